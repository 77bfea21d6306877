"""`campaign preview`: render every message for one customer exactly as it would be sent, with
the planned timeline in their time zone (quiet-hour deferrals included); or summarise an
audience (variants, reachability, expected cost). Reads the database; writes nothing."""

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
    variant_names,
    variant_order,
    variant_promo,
    variant_steps,
)
from omnicascade.cascade import ordering
from omnicascade.cascade.decision import (
    PLANNED,
    Defer,
    Recipient,
    Situation,
    Skip,
    decide,
    reachable,
)
from omnicascade.cascade.plan import follow_up_key
from omnicascade.cascade.send_history import send_time_facts
from omnicascade.cascade.send_time import Choice, choose
from omnicascade.channels.sms_segments import segments
from omnicascade.config import Settings
from omnicascade.customers.consent import load_suppressed
from omnicascade.customers.model import (
    ADDRESS_FIELD,
    CustomerIn,
    customer_dict,
    customer_orders,
    load_customers,
)
from omnicascade.customers.quiet_hours import customer_zone
from omnicascade.db.models import Customer
from omnicascade.errors import NotFound
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
    if channel == "sms":
        out["segments"] = segments(r.body)
    return out


def _order(spec: CampaignSpec, variant: str, steps: list[Step], reach: set[str],
           settings: Settings, customer_id: str, session: Session) -> list[int]:
    strategy = variant_order(spec, variant)
    costs = {ch: settings.unit_cost(ch) for ch in CHANNELS}
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
    """A stand-in code shaped like the real ones (the pattern's prefix + PREVIEW)."""
    promo_spec = variant_promo(spec, variant)
    return ({"code": promo_spec.pattern.split("{")[0] + "PREVIEW",
             "discount": promo_spec.discount} if promo_spec else {})


def _example(spec: CampaignSpec) -> dict[str, Any] | None:
    """The trigger's sample data: what preview renders with when given no event."""
    return spec.trigger.example if spec.trigger else None


def preview(loaded: LoadedCampaign, customer_id: str, *, session: Session,
            settings: Settings, event: dict[str, Any] | None = None,
            start: datetime | None = None) -> list[dict[str, Any]]:
    """Every message of every variant for this customer, in send order, with the planned
    local send time assuming a launch at `start` (default now) and no conversion."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}; import it first")
    event = event if event is not None else _example(loaded.spec)
    spec, cust = loaded.spec, customer_dict(customer)
    zone = customer_zone(customer.timezone, customer.phone, spec.timezone)
    recipient = Recipient.of(customer, load_suppressed([customer], session=session))
    start = start or datetime.now(UTC)
    reach = reachable(recipient, start)
    favorite = favorite_product(customer_orders(customer_id, session=session))
    own = assign_variant(spec, customer_id)
    names = [DEFAULT_VARIANT] if spec.experiment is None else list(spec.experiment.variants)
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
            decision = decide(Situation(step.channel, recipient, t,
                                        quiet_hours=spec.quiet_hours,
                                        campaign_timezone=spec.timezone,
                                        send_time=timing), PLANNED)
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
            out.append(entry)
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
        out.append(entry)
    return out


def campaign_channels(spec: CampaignSpec) -> list[str]:
    """The channels the campaign can send on: every variant's steps and the follow-ups."""
    used = {s.channel for v in variant_names(spec) for s in variant_steps(spec, v)}
    used |= {f.channel for f in spec.after_conversion}
    return [ch for ch in CHANNELS if ch in used]


_CONTACT = ("email", "phone", "telegram_chat_id", "push_token", "timezone", "locale")


def as_launched(row: CustomerIn, stored: Customer | None) -> Customer | None:
    """The customer as launching with this audience row would leave them, as a transient
    row (never added to the session): the file's values over the stored ones (a blank cell
    keeps what is stored), as `customers import` does. None: an id-only row of a customer
    nobody imported (launch refuses them)."""
    given = row.model_dump(exclude_unset=True, include=set(_CONTACT))
    if stored is None and not (given or row.attributes or row.consents):
        return None
    base = customer_dict(stored) if stored is not None else {}
    return Customer(id=row.id, **{f: given.get(f, base.get(f)) for f in _CONTACT},
                    attributes={**(base.get("attributes") or {}), **row.attributes},
                    consents={**(base.get("consents") or {}), **(row.consents or {})})


def preview_audience(loaded: LoadedCampaign, audience: list[CustomerIn], *, session: Session,
                     settings: Settings, sample: int = 1000) -> dict[str, Any]:
    """How the audience splits into variants and holdout, who is reachable on each of the
    campaign's channels, and what the full cascade costs per 1,000 customers if nobody
    converts. The file's own contacts count (it is what will be launched), over what is
    stored for the same customers; rows with only an id are looked up in the database."""
    spec = loaded.spec
    ids = [c.id for c in audience]
    stored = load_customers(ids, session=session)
    people = {c.id: as_launched(c, stored.get(c.id)) for c in audience}
    missing = [i for i in ids if people[i] is None]
    suppressed = load_suppressed([p for p in people.values() if p is not None],
                                 session=session)
    channels = campaign_channels(spec)
    variants: dict[str, int] = {}
    reach_counts = {ch: 0 for ch in channels}
    messages = {ch: 0.0 for ch in channels}
    sms_segments: list[int] = []
    cost = 0.0
    now = datetime.now(UTC)
    event = _example(spec)
    for cid in ids:
        variant = assign_variant(spec, cid)
        variants[variant] = variants.get(variant, 0) + 1
        person = people[cid]
        reach = reachable(Recipient.of(person, suppressed), now, channels)
        for ch in reach:
            reach_counts[ch] += 1
        if variant == HOLDOUT or person is None:
            continue
        for step in variant_steps(spec, variant):
            if step.channel not in reach:
                continue
            units: float = 1
            if step.channel == "sms" and len(sms_segments) < sample:
                promo_spec = variant_promo(spec, variant)
                promo = {"code": "XXXXXX", "discount": promo_spec.discount} if promo_spec else {}
                r = _render(loaded, step.template, "sms", customer_dict(person), event,
                            promo, variant, "0", None)
                sms_segments.append(r.get("segments", 1))
            if step.channel == "sms" and sms_segments:
                units = sum(sms_segments) / len(sms_segments)
            messages[step.channel] += 1
            cost += settings.unit_cost(step.channel) * units
    n = len(ids) or 1
    return {"campaign": spec.campaign, "customers": len(ids), "unknown_customers": len(missing),
            "variants": variants, "reachable": reach_counts,
            "messages_per_1000": {ch: round(v * 1000 / n, 1) for ch, v in messages.items()},
            "avg_sms_segments": round(sum(sms_segments) / len(sms_segments), 2)
            if sms_segments else None,
            "cost_per_1000": round(cost * 1000 / n, 4)}
