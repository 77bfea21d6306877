"""Record a conversion, then stop every affected cascade (guard 1 of promise 1).

The row is committed before any signal is sent; the deliver activity re-reads it before
every send (guard 2), so a signal that is lost or late never lets a message through.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.client import Client

from omnicascade.cascade import lifecycle
from omnicascade.cascade.entries import Counts
from omnicascade.cascade.temporal import connect, signal_conversion
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.db.models import ConversionEvent, Customer, Enrollment, to_utc_naive
from omnicascade.db.session import session_scope
from omnicascade.errors import ConfigError, UserFacingError
from omnicascade.telemetry import CONVERSIONS, bounded
from omnicascade.validation import event_name, normal_code, storable, utc_naive
from omnicascade.vocabulary import LIVE_ENROLLMENT, EnrollmentStatus, Phase, SkipReason

MAX_AMOUNT = Decimal(10) ** 10  # conversions.amount is Numeric(14, 4)


def _four_places(amount: Decimal) -> Decimal:
    """Rounded here, not by the database: SQLite and PostgreSQL would round differently."""
    if not 0 <= amount < MAX_AMOUNT:  # the field's bounds refuse it (1e24 has no 4 places)
        return amount
    return amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


class ConversionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    _storable = field_validator("*")(storable)  # what PostgreSQL can store, too
    _utc = field_validator("occurred_at")(utc_naive)  # 422, not an overflow later
    # codes are case-insensitive: looked up, matched and stored in their one normal form
    _code = field_validator("promo_code")(lambda code: normal_code(code) if code else None)

    event_id: str = Field(min_length=1, max_length=255)
    type: Annotated[str, AfterValidator(event_name)]  # the YAML's rule too
    customer_id: str | None = Field(default=None, min_length=1, max_length=255)
    promo_code: str | None = Field(default=None, min_length=1, max_length=64)
    order_id: str | None = Field(default=None, max_length=255)
    # Exact (a JSON 19.99 is 19.99), stored as Numeric(14, 4): to 4 places, below 10^10.
    amount: Annotated[Decimal, AfterValidator(_four_places)] | None = Field(
        default=None, ge=0, lt=MAX_AMOUNT, allow_inf_nan=False)
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")
    occurred_at: datetime | None = None
    data: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _who(self) -> ConversionIn:
        if not self.customer_id and not self.promo_code:
            raise ValueError("give customer_id or promo_code")
        return self


class ConversionRejected(UserFacingError, ValueError):
    """The conversion names something we do not know (e.g. an unknown promo code)."""


@dataclass
class ConversionOutcome:
    event_id: str
    customer_id: str
    stopped: int
    duplicate: bool
    to_signal: list[str]  # enrollment ids
    type: str = ""
    matched: bool = True  # False: no customer of that id is known (stored all the same)

    def body(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "customer_id": self.customer_id,
                "stopped": self.stopped, "matched": self.matched}


def record_conversion(data: ConversionIn, *, session: Session) -> ConversionOutcome:
    """Store the conversion (idempotent by event_id) and mark matching enrollments converted.
    The caller commits, then signals `to_signal`."""
    existing = session.scalar(select(ConversionEvent).where(ConversionEvent.event_id ==
                                                            data.event_id))
    if existing is not None:
        return _repeat(existing)
    customer_id = data.customer_id
    if data.promo_code:
        owner = session.scalar(select(Enrollment.customer_id)
                               .where(Enrollment.promo_code == data.promo_code))
        if owner is None:
            raise ConversionRejected(f"unknown promo code {data.promo_code!r}")
        if customer_id and customer_id != owner:
            raise ConversionRejected(f"promo code {data.promo_code!r} was issued to another "
                                     f"customer than {customer_id!r}")
        customer_id = owner
    assert customer_id is not None
    now = now_utc()
    occurred = to_utc_naive(data.occurred_at) if data.occurred_at else now
    candidates = list(session.scalars(select(Enrollment).where(
        Enrollment.customer_id == customer_id, Enrollment.converted_at.is_(None),
        Enrollment.status.in_([*LIVE_ENROLLMENT, EnrollmentStatus.COMPLETED,
                               EnrollmentStatus.GLOBAL_CONTROL]))))
    matches = [e for e in candidates
               if Counts.of(e).counts(data.type, occurred, data.data, data.promo_code)]
    # Stored and acknowledged either way (nothing is lost; the shop may import the customer
    # later), but a conversion for a customer nobody knows is reported as unmatched.
    matched = bool(matches) or session.get(Customer, customer_id) is not None or \
        session.scalar(select(Enrollment.id).where(Enrollment.customer_id == customer_id)
                       .limit(1)) is not None
    live = [e.id for e in matches if e.status in LIVE_ENROLLMENT]
    lifecycle.note_conversion(matches, data.event_id, occurred)
    # their cascade steps still deferred will never go out (follow-ups still may)
    lifecycle.close_pending([e.id for e in matches], SkipReason.CONVERTED, session=session,
                            phase=Phase.CASCADE)
    # Written now, the enrollments are locked until the commit: a send's last guard that
    # held one first has already stamped its `sending_at`; one that comes later waits and
    # then sees this conversion. So `recorded_at`, taken after, orders the two truly.
    session.flush()
    now = now_utc()
    row = ConversionEvent(event_id=data.event_id, type=data.type, customer_id=customer_id,
                          promo_code=data.promo_code or None,
                          order_id=data.order_id, amount=data.amount,
                          currency=data.currency.upper() if data.currency else None,
                          data=data.data, occurred_at=occurred, recorded_at=now,
                          stopped=len(live), matched=matched)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # a concurrent request with the same event_id won the race
        session.rollback()
        existing = session.scalar(select(ConversionEvent).where(
            ConversionEvent.event_id == data.event_id))
        assert existing is not None
        return _repeat(existing)
    # The type is the shop's string: a label only when a cascade of this customer listens
    # for it (bounded by the campaigns), else "other".
    listened = {t for e in candidates for t in (e.conversion_events or [])}
    CONVERSIONS.labels(bounded(data.type, listened), "matched" if matched else "unmatched").inc()
    return ConversionOutcome(data.event_id, customer_id, len(live), False, live, data.type,
                             matched)


def _repeat(row: ConversionEvent) -> ConversionOutcome:
    return ConversionOutcome(row.event_id, row.customer_id, row.stopped, True, [], row.type,
                             bool(row.matched))


async def tell_cascades(client: Client | None, outcome: ConversionOutcome,
                        timeout_s: float = 5.0) -> int:
    """Guard 1: signal every cascade the conversion stopped (after the commit)."""
    if client is None or not outcome.to_signal:
        return 0
    return await signal_conversion(client, outcome.to_signal, outcome.event_id, outcome.type,
                                   timeout_s)


async def convert_by_hand(data: ConversionIn, settings: Settings) -> tuple[dict[str, Any], bool]:
    """`omnicascade convert`: the same path as POST /v1/conversions, without HTTP. Returns
    the answer and whether Temporal was reachable to tell the cascades at once."""
    def tx() -> ConversionOutcome:
        with session_scope(settings.db_url) as session:
            return record_conversion(data, session=session)
    outcome = await asyncio.to_thread(tx)  # committed first: the send-time guard sees it
    if not outcome.to_signal:
        return outcome.body(), True
    try:
        client = await connect(settings)
    except ConfigError:
        return outcome.body(), False
    await tell_cascades(client, outcome, settings.signal_timeout_s)
    return outcome.body(), True
