"""Entries: who may enter a campaign, and which cascades a conversion or an exit event ends.

An entry is (campaign slug, customer, key value) — the key is `trigger.key`'s field of the
event's data, none without one. At most one cascade per entry is live at a time, across
every version and run of the campaign: the database refuses a second one (the unique
`enrollments.active_entry`, lifecycle.entry_id), and `admit` says why before it gets that
far. After a cascade ends, `reentry` decides: `after_exit` lets the entry in again, `never`
never does, a duration lets it in once that long has passed since the previous entry.

With `conversion.match: key`, a conversion ends the cascade whose key equals its
`data.<key>` or whose promo code it redeems; one that carries no key value ends them all
(the safe side of promise 1). `key_matches` is that rule, for the conversion, for exit
events and for the send-time guard alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omnicascade.campaign.model import CampaignSpec
from omnicascade.cascade.lifecycle import entry_id
from omnicascade.db.models import ConversionEvent, Enrollment
from omnicascade.db.query import rows_in, scalars_in
from omnicascade.vocabulary import LIVE_ENROLLMENT, EnrollmentStatus

ACTIVE = "already in a live cascade of this campaign"


@dataclass(frozen=True)
class Refusal:
    customer_id: str
    key: str | None
    reason: str


class MissingKey(ValueError):
    """A trigger event of a keyed campaign without the key field in its data."""


def key_value(value: Any) -> str:
    """A data value as an entry key: strings and numbers as written, anything else as JSON."""
    if isinstance(value, str):
        return value[:255]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)[:255]


def entry_key(spec: CampaignSpec, data: dict[str, Any] | None) -> str | None:
    """The entry key of a trigger event for this campaign (None: the campaign has no key)."""
    field = spec.entry_field
    if field is None:
        return None
    value = (data or {}).get(field)
    if value is None or value == "":
        raise MissingKey(f"the event has no data.{field}, which this campaign's trigger.key "
                         f"names")
    return key_value(value)


def admit(spec: CampaignSpec, candidates: Sequence[tuple[str, str | None]], now: datetime, *,
          session: Session) -> tuple[list[tuple[str, str | None]], list[Refusal]]:
    """Split (customer, key) candidates into those who may enter now and those who may not,
    with the reason. The database's unique index has the last word (a racing enrollment
    still fails its insert); this is the answer a marketer can read."""
    slug = spec.campaign
    wanted = {entry_id(slug, c, k): (c, k) for c, k in dict.fromkeys(candidates)}
    live = set(scalars_in(session, lambda chunk: select(Enrollment.active_entry).where(
        Enrollment.active_entry.in_(chunk)), list(wanted)))
    refused = [Refusal(c, k, ACTIVE) for e, (c, k) in wanted.items() if e in live]
    rest = [(c, k) for e, (c, k) in wanted.items() if e not in live]
    if spec.reentry != "after_exit" and rest:
        last = {(c, k or ""): at for c, k, at in rows_in(
            session, lambda chunk: select(Enrollment.customer_id, Enrollment.entry_key,
                                          func.max(Enrollment.enrolled_at))
            .where(Enrollment.campaign == slug, Enrollment.customer_id.in_(chunk),
                   Enrollment.status != EnrollmentStatus.EXCLUDED)
            .group_by(Enrollment.customer_id, Enrollment.entry_key),
            list({c for c, _ in rest}))}
        gap = spec.reentry_s
        admitted = []
        for c, k in rest:
            previous = last.get((c, k or ""))
            if previous is None:
                admitted.append((c, k))
            elif gap is None:
                refused.append(Refusal(c, k, "reentry: never (entered before)"))
            elif previous + timedelta(seconds=gap) > now:
                refused.append(Refusal(c, k, f"reentry: {spec.reentry} between entries "
                                             f"(last entered {previous:%Y-%m-%d %H:%M} UTC)"))
            else:
                admitted.append((c, k))
        rest = admitted
    return rest, refused


def key_matches(enrollment: Enrollment, data: dict[str, Any] | None,
                promo_code: str | None) -> bool:
    """Does a conversion (or exit event) with this data and promo code concern this
    cascade? Always, unless the campaign matches by key and the event names another key."""
    if not enrollment.match_key:
        return True
    value = (data or {}).get(enrollment.match_key)
    if value is None or value == "":
        return True  # no key value: it ends them all
    if promo_code and enrollment.promo_code == promo_code.upper():
        return True
    return enrollment.entry_key == key_value(value)


def converted_since(enrollment: Enrollment, *, session: Session) -> bool:
    """The send-time guard's question: has a conversion that ends this cascade been
    recorded (since its entry, less the lookback)?"""
    if not enrollment.conversion_events:
        return False
    since = enrollment.enrolled_at - timedelta(seconds=enrollment.lookback_s)
    q = select(ConversionEvent.data, ConversionEvent.promo_code).where(
        ConversionEvent.customer_id == enrollment.customer_id,
        ConversionEvent.type.in_(enrollment.conversion_events),
        ConversionEvent.occurred_at >= since)
    if not enrollment.match_key:
        return session.execute(q.limit(1)).first() is not None
    return any(key_matches(enrollment, data, promo) for data, promo in session.execute(q))


def recently_converted(spec: CampaignSpec, candidates: Sequence[tuple[str, str | None]],
                       now: datetime, *, session: Session) -> set[tuple[str, str | None]]:
    """Candidates whose matching conversion falls in [now - lookback, now]: not enrolled."""
    if not spec.conversion_events or not candidates:
        return set()
    since = now - timedelta(seconds=spec.lookback_s)
    found: dict[str, list[tuple[dict[str, Any] | None, str | None]]] = {}
    for customer_id, data, promo in rows_in(
            session, lambda chunk: select(ConversionEvent.customer_id, ConversionEvent.data,
                                          ConversionEvent.promo_code)
            .where(ConversionEvent.customer_id.in_(chunk),
                   ConversionEvent.type.in_(spec.conversion_events),
                   ConversionEvent.occurred_at >= since),
            list({c for c, _ in candidates})):
        found.setdefault(customer_id, []).append((data, promo))
    out = set()
    match_key = spec.match_key
    for c, k in candidates:
        for data, _ in found.get(c, []):
            value = (data or {}).get(match_key) if match_key else None
            if value is None or value == "" or k is None or key_value(value) == k:
                out.add((c, k))
    return out


def live_cascades(customer_id: str, *, session: Session) -> list[Enrollment]:
    return list(session.scalars(select(Enrollment).where(
        Enrollment.customer_id == customer_id, Enrollment.status.in_(LIVE_ENROLLMENT))))
