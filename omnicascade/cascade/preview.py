"""`campaign preview`: render every message for one customer exactly as it would be sent, with
the planned timeline in their time zone (quiet-hour deferrals included) and what the send
decision (cascade/decision.py, PLANNED) will say at each planned time — a WhatsApp
free-form step outside the customer's 24 h window shows as skipped `window_closed` — and
the cost of each message that will go out (Settings.price_of, as the ledger prices it;
the audience summary, cascade/audience.py, adds these up). Reads the database; writes
nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from omnicascade.campaign.durations import format_duration
from omnicascade.campaign.load import LoadedCampaign
from omnicascade.campaign.model import CampaignSpec, Step
from omnicascade.campaign.templates import whatsapp
from omnicascade.campaign.templates.helpers import favorite_product
from omnicascade.campaign.templates.render import RenderError, build_context, render_message
from omnicascade.campaign.variants import (
    assign_variant,
    variant_order,
    variant_promo,
    variant_steps,
)
from omnicascade.cascade import ordering
from omnicascade.cascade.cascade_input import follow_up_key
from omnicascade.cascade.conversations import window_closes
from omnicascade.cascade.decision import (
    PLANNED,
    Defer,
    Recipient,
    Situation,
    Skip,
    decide,
    reachable,
)
from omnicascade.cascade.send_history import send_time_facts
from omnicascade.cascade.send_time import Choice, choose
from omnicascade.channels.sms_segments import segments, sms_body
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.customers.consent import load_suppressed
from omnicascade.customers.model import (
    ADDRESS_FIELD,
    customer_dict,
    customer_orders,
)
from omnicascade.customers.quiet_hours import customer_zone
from omnicascade.db.models import Customer
from omnicascade.errors import NotFound
from omnicascade.validation import normal_code
from omnicascade.vocabulary import CHANNELS, DEFAULT_VARIANT, HOLDOUT, Phase, SkipReason


def _render(loaded: LoadedCampaign, template: str, channel: str, cust: dict[str, Any],
            event: dict[str, Any] | None, promo: dict[str, Any], variant: str, key: str,
            favorite: str | None) -> dict[str, Any]:
    spec = loaded.spec
    parts = loaded.templates.get(template, {})
    context = build_context(
        customer=cust, event=event, promo=promo,
        campaign={"name": spec.campaign, "description": spec.description,
                  "run_id": "preview"},
        unsubscribe_url="https://example.invalid/u/preview",
        step={"key": key, "channel": channel}, variant=variant, favorite_product=favorite)
    try:
        r = render_message(parts, context, template=template)
        # WhatsApp's approved template goes out instead of the body (its variables rendered)
        content = whatsapp.render_content(parts[whatsapp.PART], context, template=template) \
            if channel == "whatsapp" and whatsapp.PART in parts else None
    except RenderError as exc:
        return {"error": str(exc)}
    out: dict[str, Any] = {"subject": r.subject, "title": r.title, "body": r.body,
                           "html": r.html}
    if content is not None:
        out["whatsapp_template"] = content
    if channel == "sms":  # the body exactly as it will be sent, and what that costs
        out["body"] = sms_body(r.body)
        out["segments"] = segments(out["body"])
    return out


def priced(entry: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A message that will go out gets its cost (Settings.price_of, as the ledger prices
    it) and currency; a skipped or unrenderable one has none."""
    if "skipped" not in entry and "error" not in entry:
        entry["cost"] = float(settings.price_of(entry["channel"], entry.get("segments")))
        entry["currency"] = settings.cost_currency
    return entry


def _order(spec: CampaignSpec, variant: str, steps: list[Step], reach: set[str],
           settings: Settings, customer_id: str, session: Session) -> list[int]:
    strategy = variant_order(spec, variant)
    costs = {ch: settings.price_of(ch) for ch in CHANNELS}
    scores = ordering.history([customer_id], session=session).get(customer_id, {}) \
        if strategy == "preference" else {}
    return ordering.resolve(steps, strategy, reach, scores, costs)


def may_skip(skip_if: Sequence[str]) -> str:
    """What preview says of a step with `skip_if`."""
    return (f"may be skipped (engaged): not sent if an earlier message of the cascade was "
            f"{' or '.join(skip_if)} by then; decided at send time, and then the cascade "
            f"moves on at once")


def send_time_entry(choice: Choice, zone: Any) -> dict[str, Any]:
    """What preview (and its JSON) says of a step with `send_time: best`: the chosen local
    time, where it came from (customer, audience, scheduled) and why."""
    return {"at": choice.at.astimezone(zone).isoformat(), "source": choice.source,
            "why": choice.why}


def _preview_promo(spec: CampaignSpec, variant: str) -> dict[str, Any]:
    """A stand-in code shaped like the real ones (the pattern's prefix + PREVIEW), in the
    normal form real codes have."""
    promo_spec = variant_promo(spec, variant)
    return ({"code": normal_code(promo_spec.pattern.split("{")[0] + "PREVIEW"),
             "discount": promo_spec.discount} if promo_spec else {})


def _example(spec: CampaignSpec) -> dict[str, Any] | None:
    """The trigger's sample data: what preview renders with when given no event."""
    return spec.trigger.example if spec.trigger else None


def preview(loaded: LoadedCampaign, customer_id: str, *, session: Session,
            settings: Settings, event: dict[str, Any] | None = None,
            start: datetime | None = None, customer: Customer | None = None,
            variants: list[str] | None = None) -> list[dict[str, Any]]:
    """Every message of every variant (or of `variants`) for this customer (or the
    transient `customer` an audience file makes), in send order, with the planned local
    send time assuming a launch at `start` (default now) and no conversion, and the cost
    of each message that will go out."""
    customer = customer or session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}; import it first")
    event = event if event is not None else _example(loaded.spec)
    spec, cust = loaded.spec, customer_dict(customer)
    zone = customer_zone(customer.timezone, customer.phone, spec.timezone)
    recipient = Recipient.of(customer, load_suppressed([customer], session=session))
    start = start or now_utc(aware=True)
    reach = reachable(recipient, start)
    favorite = favorite_product(customer_orders(customer_id, session=session))
    own = assign_variant(spec, customer_id)
    names = variants or ([DEFAULT_VARIANT] if spec.experiment is None
                         else list(spec.experiment.variants))
    out = []
    for variant in names:
        steps = variant_steps(spec, variant)
        promo = _preview_promo(spec, variant)
        t = start
        for i in _order(spec, variant, steps, reach, settings, customer_id, session):
            step = steps[i]
            entry: dict[str, Any] = {"variant": variant, "assigned": variant == own,
                                     "phase": Phase.CASCADE.value, "step": i + 1,
                                     "channel": step.channel, "template": step.template,
                                     "wait": format_duration(step.wait),
                                     "to": cust.get(ADDRESS_FIELD[step.channel])}
            policy = spec.send_time_for(step)
            timing = send_time_facts(policy, step.channel, customer, spec.timezone,
                                     session=session) if policy else None
            free_form = whatsapp.needs_window(step.channel, loaded.templates.get(
                step.template, {}))
            closes = window_closes(step.channel, entry["to"], session=session) \
                if free_form and entry["to"] else None
            decision = decide(Situation(step.channel, recipient, t,
                                        quiet_hours=spec.quiet_hours,
                                        campaign_timezone=spec.timezone,
                                        send_time=timing, needs_window=free_form,
                                        window_open=closes is not None
                                        and closes.replace(tzinfo=UTC) > t), PLANNED)
            if isinstance(decision, Skip):
                entry["skipped"] = decision.reason.value
            else:
                if timing is not None:  # the best hour, chosen outside quiet hours
                    entry["send_time"] = send_time_entry(
                        choose(t, zone, timing, spec.quiet_hours), zone)
                deferral = decision if isinstance(decision, Defer) else None
                if deferral is not None and deferral.reason == SkipReason.SEND_TIME:
                    entry["send_time_from"] = t.astimezone(zone).isoformat()
                    t, deferral = deferral.until, None
                if step.skip_if:  # engagement happens later: planned, not known in advance
                    entry["skip_if"] = list(step.skip_if)
                    entry["may_skip"] = may_skip(step.skip_if)
                elif deferral is not None:
                    entry["deferred_from"] = t.astimezone(zone).isoformat()
                    t = deferral.until
            entry["at"], entry["zone"] = t.astimezone(zone).isoformat(), str(zone)
            entry.update(_render(loaded, step.template, step.channel, cust, event, promo,
                                 variant, str(i), favorite))
            out.append(priced(entry, settings))
            if "skipped" not in entry:
                t = t + timedelta(seconds=step.wait)
    for i, f in enumerate(spec.after_conversion):
        entry = {"variant": "all", "assigned": own != HOLDOUT, "phase": "after_conversion",
                 "step": i + 1, "channel": f.channel, "template": f.template,
                 "delay": format_duration(f.delay), "to": cust.get(ADDRESS_FIELD[f.channel]),
                 "at": f"{format_duration(f.delay)} after a conversion"}
        promo = _preview_promo(spec, own if own != HOLDOUT else DEFAULT_VARIANT)
        entry.update(_render(loaded, f.template, f.channel, cust, event, promo, own,
                             follow_up_key(i), favorite))
        out.append(priced(entry, settings))
    return out
