"""Entries: who may enter a campaign, and which cascades a conversion or an exit event ends.

An entry is (campaign slug, customer, key value) — the key is `trigger.key`'s field of the
event's data, none without one. At most one cascade per entry is live at a time, across
every version and run of the campaign: the database refuses a second one (the unique
`enrollments.active_entry`, lifecycle.entry_id), and `admit` says why before it gets that
far. After a cascade ends, `reentry` decides: `after_exit` lets the entry in again, `never`
never does, a duration lets it in once that long has passed since the previous entry.

"Does this conversion count for this cascade" is decided here, once (`Counts`): its type
is one of `conversion.events`; it happened no earlier than the entry less
`conversion.lookback`, and — once the cascade ended — no later than `conversion.window`
after the end; and with `conversion.match: key` it names the cascade's key or redeems its
promo code, or names no key at all (it then ends them all: the safe side of promise 1;
`key_matches`, which exit events use too). `Counts.counts` asks it of one conversion (a
conversion being recorded: which cascades it ends); `Counts.bounds` is the same type and
time rule as SQL, and every row it finds goes through `counts` (the send-time guard, the
entry check), so the two ways of asking can never disagree — and a send still costs one
indexed query, never a load of all conversions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from omnicascade.campaign.model import CampaignSpec
from omnicascade.cascade.lifecycle import entry_id
from omnicascade.db.models import ConversionEvent, Enrollment
from omnicascade.db.query import rows_in, scalars_in
from omnicascade.validation import normal_code
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


@dataclass(frozen=True)
class Counts:
    """Which conversions count for one cascade (or for one that would start now). Times
    are naive UTC on the wall clock (the enrollment stores its window already scaled)."""
    events: frozenset[str]
    since: datetime                  # the entry, less `conversion.lookback`
    until: datetime | None = None    # ended: the end plus `conversion.window`; else None
    match_key: str | None = None     # `conversion.match: key`: the data field to compare
    entry_key: str | None = None
    promo_code: str | None = None    # the cascade's own code, in its normal form

    @classmethod
    def of(cls, e: Enrollment) -> Counts:
        until = None
        if e.status not in LIVE_ENROLLMENT and e.finished_at is not None \
                and e.conversion_window_s is not None:
            until = e.finished_at + timedelta(seconds=e.conversion_window_s)
        return cls(frozenset(e.conversion_events or ()),
                   e.enrolled_at - timedelta(seconds=e.lookback_s or 0), until,
                   e.match_key, e.entry_key, e.promo_code)

    @classmethod
    def entering(cls, spec: CampaignSpec, key: str | None, now: datetime) -> Counts:
        """For an entry (customer, `key`) that would start at `now`: the entry check."""
        return cls(frozenset(spec.conversion_events), now - timedelta(seconds=spec.lookback_s),
                   None, spec.match_key, key)

    def key_matches(self, data: dict[str, Any] | None, promo_code: str | None) -> bool:
        """Does an event with this data and promo code concern this cascade? Always, unless
        the campaign matches by key and the event names another key."""
        if not self.match_key or self.entry_key is None:
            return True
        value = (data or {}).get(self.match_key)
        if value is None or value == "":
            return True  # no key value: it ends them all
        if promo_code and self.promo_code == normal_code(promo_code):
            return True
        return self.entry_key == key_value(value)

    def counts(self, event: str, occurred: datetime, data: dict[str, Any] | None,
               promo_code: str | None) -> bool:
        """The rule, for one conversion of type `event`."""
        return event in self.events and self.since <= occurred \
            and (self.until is None or occurred <= self.until) \
            and self.key_matches(data, promo_code)

    def bounds(self) -> list[ColumnElement[bool]]:
        """The rule's type and time bounds over conversion_events (its customer aside);
        whatever they find is still asked `counts` (the key is matched in Python)."""
        found = [ConversionEvent.type.in_(sorted(self.events)),
                 ConversionEvent.occurred_at >= self.since]
        return found + ([ConversionEvent.occurred_at <= self.until] if self.until else [])

    def found(self, rows: Iterable[Any]) -> bool:
        """Whether any (type, occurred_at, data, promo_code) row found by `bounds` counts."""
        return any(self.counts(*row) for row in rows)


ROW = (ConversionEvent.type, ConversionEvent.occurred_at, ConversionEvent.data,
       ConversionEvent.promo_code)


def key_matches(enrollment: Enrollment, data: dict[str, Any] | None,
                promo_code: str | None) -> bool:
    """Does a conversion (or exit event) with this data and promo code concern this
    cascade? (Counts.key_matches)"""
    return Counts.of(enrollment).key_matches(data, promo_code)


def converted_since(enrollment: Enrollment, *, session: Session) -> bool:
    """The send-time guard's question: has a conversion that counts for this cascade been
    recorded? One indexed query (conversion_events by customer)."""
    rule = Counts.of(enrollment)
    if not rule.events:
        return False
    q = select(*ROW).where(ConversionEvent.customer_id == enrollment.customer_id,
                           *rule.bounds())
    if not rule.match_key:  # the bounds are the whole rule: one row answers
        q = q.limit(1)
    return rule.found(session.execute(q))


def recently_converted(spec: CampaignSpec, candidates: Sequence[tuple[str, str | None]],
                       now: datetime, *, session: Session) -> set[tuple[str, str | None]]:
    """Candidates for whom a conversion already counts (since now less the lookback): not
    enrolled. One query per chunk of customers."""
    if not spec.conversion_events or not candidates:
        return set()
    found: dict[str, list[Any]] = {}
    anyone = Counts.entering(spec, None, now)  # the same bounds for every candidate
    for customer_id, *row in rows_in(
            session, lambda chunk: select(ConversionEvent.customer_id, *ROW)
            .where(ConversionEvent.customer_id.in_(chunk), *anyone.bounds()),
            list({c for c, _ in candidates})):
        found.setdefault(customer_id, []).append(row)
    return {(c, k) for c, k in candidates
            if Counts.entering(spec, k, now).found(found.get(c, []))}


def live_cascades(customer_id: str, *, session: Session) -> list[Enrollment]:
    return list(session.scalars(select(Enrollment).where(
        Enrollment.customer_id == customer_id, Enrollment.status.in_(LIVE_ENROLLMENT))))
