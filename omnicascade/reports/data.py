"""Everything a report needs about one run, read once into plain objects: members
(enrollments), their sends (the delivery ledger plus provider feedback) and the conversion
that converted each of them. The report modules compute from these and never query.

Every instant here is on the run's campaign clock (clock.py): a rehearsal launched with
`--time-scale N` reads in campaign hours and days, so every duration computed from these
objects is campaign time too. A live run's instants are the stored ones."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.clock import LIVE, RunClock, clock_of
from omnicascade.config import Settings
from omnicascade.db.models import ConversionEvent, Delivery, DeliveryEvent, Enrollment, Run
from omnicascade.db.query import chunks
from omnicascade.reports.money import ZERO, Currencies
from omnicascade.vocabulary import (
    DEFAULT_VARIANT,
    ENGAGEMENT_EVENTS,
    HOLDOUT,
    WENT_OUT,
    DeliveryStatus,
    EnrollmentStatus,
    Phase,
    SkipReason,
)

# Provider feedback, normalised (vocabulary.py): a click proves an open, an open proves a
# delivery. A machine open (Apple Mail Privacy Protection) proves a delivery, never an open.
DELIVERED = ENGAGEMENT_EVENTS["delivered"]
OPENED = ENGAGEMENT_EVENTS["opened"]
CLICKED = ENGAGEMENT_EVENTS["clicked"]
BOUNCED = {"bounce", "bounced", "dropped", "undelivered"}


@dataclass
class Send:
    delivery_id: str
    phase: str           # cascade | follow_up
    index: int
    channel: str
    status: str
    reason: str | None
    at: datetime         # sent_at, or when the row was written if it never got one
    cost: Decimal        # as priced at send (Settings.price_of), in the cost currency
    feedback: set[str] = field(default_factory=set)
    saved: Decimal = ZERO  # skipped as `engaged`: what it would have cost (one unit)

    @property
    def went_out(self) -> bool:
        return self.status in WENT_OUT

    @property
    def engaged_skip(self) -> bool:
        """Not sent because an earlier message of the cascade was engaged with (skip_if)."""
        return self.status == DeliveryStatus.SKIPPED and self.reason == SkipReason.ENGAGED


@dataclass
class Conversion:
    event_id: str
    type: str
    occurred_at: datetime
    amount: Decimal | None   # None: the shop sent no amount (revenue unknown, not 0)
    currency: str | None     # None with an amount: the shop's (cost) currency


@dataclass
class Member:
    enrollment_id: str
    customer_id: str
    variant: str
    status: str
    exit_reason: str | None
    enrolled_at: datetime
    converted_at: datetime | None
    conversion: Conversion | None
    sends: list[Send] = field(default_factory=list)

    @property
    def converted(self) -> bool:
        return self.converted_at is not None

    @property
    def holdout(self) -> bool:
        return self.variant == HOLDOUT

    @property
    def amount(self) -> Decimal | None:
        """What the conversion was worth (None: not converted, or no amount given)."""
        return self.conversion.amount if self.conversion else None

    @property
    def currency(self) -> str | None:
        return self.conversion.currency if self.conversion else None

    @property
    def cost(self) -> Decimal:
        """What the cascade's messages to this member cost (follow-ups not included)."""
        return sum((s.cost for s in self.sends if s.phase != Phase.FOLLOW_UP), ZERO)

    @property
    def follow_up_cost(self) -> Decimal:
        return sum((s.cost for s in self.sends if s.phase == Phase.FOLLOW_UP), ZERO)


@dataclass
class RunData:
    run_id: str
    campaign: str
    description: str
    run_status: str
    created_at: datetime
    snapshot: dict[str, Any]
    members: list[Member]          # every enrollment except `excluded`
    excluded: int                  # already converted at entry: never messaged, not counted
    clock: RunClock = LIVE         # the run's clock: every instant above is mapped onto it
    money: Currencies = field(default_factory=Currencies)
    unmatched: int = 0             # conversions of the run's types for unknown customers
    cost_currencies: frozenset[str] = frozenset()  # what the stored costs say they are in

    def variants(self) -> list[str]:
        """Variant names: spec order first (as the marketer wrote them), holdout last."""
        exp = (self.snapshot.get("spec") or {}).get("experiment") or {}
        order = [v for v in (exp.get("variants") or {})]
        seen = {m.variant for m in self.members}
        names = [v for v in order if v in seen]
        names += sorted(seen - set(names) - {HOLDOUT})
        return names + ([HOLDOUT] if HOLDOUT in seen else [])

    def of(self, variant: str) -> list[Member]:
        return [m for m in self.members if m.variant == variant]


def _send_cost(d: Delivery | Any) -> Decimal:
    """As stored: priced once when it went out (ledger), older rows by migration 0011."""
    return d.cost if d.status in WENT_OUT and d.cost is not None else ZERO


def load_run(run: Run, *, session: Session, settings: Settings | None) -> RunData:
    enrollments = list(session.execute(
        select(Enrollment.id, Enrollment.customer_id, Enrollment.variant, Enrollment.status,
               Enrollment.exit_reason, Enrollment.enrolled_at, Enrollment.converted_at,
               Enrollment.conversion_event_id).where(Enrollment.run_id == run.id)
        .order_by(Enrollment.enrolled_at, Enrollment.id)))
    conv_ids = sorted({e.conversion_event_id for e in enrollments if e.conversion_event_id})
    conversions: dict[str, Conversion] = {}
    clock = clock_of(run)
    at = clock.campaign
    for chunk in chunks(conv_ids):
        for c in session.execute(select(ConversionEvent.event_id, ConversionEvent.type,
                                        ConversionEvent.occurred_at, ConversionEvent.amount,
                                        ConversionEvent.currency)
                                 .where(ConversionEvent.event_id.in_(chunk))):
            conversions[c.event_id] = Conversion(
                c.event_id, c.type, at(c.occurred_at),
                c.amount, c.currency or None)
    sends: dict[str, list[Send]] = defaultdict(list)
    by_id: dict[str, Send] = {}
    cost_currencies: set[str] = set()
    for d in session.execute(
            select(Delivery.id, Delivery.enrollment_id, Delivery.phase, Delivery.step_index,
                   Delivery.channel, Delivery.status, Delivery.reason, Delivery.sent_at,
                   Delivery.created_at, Delivery.cost, Delivery.cost_currency)
            .where(Delivery.run_id == run.id).order_by(Delivery.created_at, Delivery.id)):
        s = Send(d.id, d.phase, d.step_index, d.channel, d.status, d.reason,
                 at(d.sent_at or d.created_at), _send_cost(d))
        if s.engaged_skip and settings:  # priced like a send: the one price, one unit
            s.saved = settings.price_of(d.channel)
        sends[d.enrollment_id].append(s)
        if d.cost_currency and s.cost:
            cost_currencies.add(d.cost_currency)
        by_id[s.delivery_id] = s
    for chunk in chunks(list(by_id)):
        for delivery_id, event in session.execute(
                select(DeliveryEvent.delivery_id, DeliveryEvent.event)
                .where(DeliveryEvent.delivery_id.in_(chunk))):
            if delivery_id is not None:
                by_id[delivery_id].feedback.add(str(event).lower())
    members, excluded = [], 0
    for e in enrollments:
        if e.status == EnrollmentStatus.EXCLUDED:
            excluded += 1
            continue
        conv = conversions.get(e.conversion_event_id) if e.converted_at else None
        members.append(Member(e.id, e.customer_id, e.variant or DEFAULT_VARIANT, e.status,
                              e.exit_reason, at(e.enrolled_at),
                              at(e.converted_at) if e.converted_at else None, conv,
                              sends.get(e.id, [])))
    money = Currencies(settings.cost_currency, settings.fx()) if settings else Currencies()
    return RunData(run.id, run.campaign, run.description or "", run.status, run.created_at,
                   run.snapshot or {}, members, excluded, clock, money,
                   cost_currencies=frozenset(cost_currencies))


def planned_steps(data: RunData, variant: str) -> list[tuple[int, str]]:
    """(index, channel) of each cascade step the variant was launched with, so a live
    funnel shows steps nobody has reached yet. Per-customer channel ordering (order: cost |
    preference) makes channels per index unknowable in advance: then nothing is planned."""
    if variant == HOLDOUT:
        return []
    spec = data.snapshot.get("spec") or {}
    v = ((spec.get("experiment") or {}).get("variants") or {}).get(variant) or {}
    if (v.get("order") or spec.get("order") or "as_written") != "as_written":
        return []
    steps: Iterable[dict[str, Any]] = v.get("steps") or spec.get("steps") or []
    return [(i, str(s.get("channel"))) for i, s in enumerate(steps)]
