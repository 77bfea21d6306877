"""`campaign preview --audience`: how an audience splits into variants and holdout, who can
be reached on each of the campaign's channels, and what the full cascade costs per 1,000
customers if nobody converts. Each customer's cascade is planned by the per-customer
preview (cascade/preview.py: the send decision, the rendered body, Settings.price_of), so
the expected cost is the sum of the previews, not a second estimate. Writes nothing."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from omnicascade.campaign.load import LoadedCampaign
from omnicascade.campaign.model import CampaignSpec
from omnicascade.campaign.templates import whatsapp
from omnicascade.campaign.variants import assign_variant, variant_names, variant_steps
from omnicascade.cascade.conversations import window_open
from omnicascade.cascade.decision import Recipient, reachable
from omnicascade.cascade.preview import preview
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.customers.consent import load_suppressed
from omnicascade.customers.model import CustomerIn, customer_dict, load_customers
from omnicascade.db.models import Customer
from omnicascade.vocabulary import CHANNELS, HOLDOUT, Phase, holdout_note


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


def window_only(loaded: LoadedCampaign, channel: str) -> bool:
    """Every step of the campaign on `channel` is WhatsApp free-form: it reaches only the
    customers whose 24 h window is open."""
    spec = loaded.spec
    templates = [s.template for v in variant_names(spec) for s in variant_steps(spec, v)
                 if s.channel == channel]
    templates += [f.template for f in spec.after_conversion if f.channel == channel]
    return bool(templates) and all(
        whatsapp.needs_window(channel, loaded.templates.get(t, {})) for t in templates)


def _reach(loaded: LoadedCampaign, person: Customer | None, suppressed: frozenset[Any],
           channels: list[str], now: datetime, session: Session) -> set[str]:
    reach = reachable(Recipient.of(person, suppressed), now, channels)
    if person is not None and person.phone:
        reach -= {ch for ch in reach if window_only(loaded, ch) and not window_open(
            ch, person.phone, now.replace(tzinfo=None), session=session)}
    return reach


def holdout_row(spec: CampaignSpec, taken: int, audience: int) -> dict[str, Any] | None:
    """How many of the audience the holdout takes (a hash decides, so a small audience can
    leave it empty), said as the report says it."""
    if spec.experiment is None or not spec.experiment.holdout:
        return None
    return {"percent": spec.experiment.holdout, "customers": taken,
            "note": holdout_note(spec.experiment.holdout, taken, audience)}


def preview_audience(loaded: LoadedCampaign, audience: list[CustomerIn], *, session: Session,
                     settings: Settings, sample: int = 1000) -> dict[str, Any]:
    """The audience summary. The file's own contacts count (it is what will be launched),
    over what is stored for the same customers; rows with only an id are looked up in the
    database. The first `sample` messaged customers are planned one by one; a larger
    audience's cost and messages are theirs scaled up."""
    spec = loaded.spec
    ids = [c.id for c in audience]
    stored = load_customers(ids, session=session)
    people = {c.id: as_launched(c, stored.get(c.id)) for c in audience}
    missing = [i for i in ids if people[i] is None]
    suppressed = load_suppressed([p for p in people.values() if p is not None],
                                 session=session)
    channels = campaign_channels(spec)
    variants: dict[str, int] = {HOLDOUT: 0} if holdout_row(spec, 0, 0) else {}
    reach_counts = {ch: 0 for ch in channels}
    messages = {ch: 0 for ch in channels}
    sms_segments: list[int] = []
    cost, planned, treated = Decimal(0), 0, 0
    now = now_utc(aware=True)
    for cid in ids:
        variant = assign_variant(spec, cid)
        variants[variant] = variants.get(variant, 0) + 1
        person = people[cid]
        for ch in _reach(loaded, person, suppressed, channels, now, session):
            reach_counts[ch] += 1
        if variant == HOLDOUT or person is None:
            continue
        treated += 1
        if planned >= sample:
            continue
        planned += 1
        for m in preview(loaded, cid, session=session, settings=settings, start=now,
                         customer=person, variants=[variant]):
            if m["phase"] == Phase.CASCADE and "cost" in m:  # it will go out
                messages[m["channel"]] += 1
                cost += Decimal(str(m["cost"]))
                if m["channel"] == "sms":
                    sms_segments.append(m["segments"])
    n, scale = len(ids) or 1, Decimal(treated) / planned if planned else Decimal(0)
    return {"campaign": spec.campaign, "customers": len(ids), "unknown_customers": len(missing),
            "variants": variants, "holdout": holdout_row(spec, variants.get(HOLDOUT, 0),
                                                        len(ids)),
            "reachable": reach_counts,
            "messages_per_1000": {ch: round(float(v * scale) * 1000 / n, 1)
                                  for ch, v in messages.items()},
            "avg_sms_segments": round(sum(sms_segments) / len(sms_segments), 2)
            if sms_segments else None,
            "cost_per_1000": float(round(cost * scale * 1000 / n, 4)),
            "currency": settings.cost_currency}
