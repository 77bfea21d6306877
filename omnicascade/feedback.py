"""Provider feedback: store each webhook event once, then act on it.

A `Feedback` is one provider event already parsed and verified (api/webhooks.py). Recording
is idempotent on the provider's event id, so a redelivered webhook changes nothing twice.
Acting on it may suppress the address for every campaign (bounce, spam report, unsubscribe,
STOP, blocked bot), lift a suppression the person themselves revoked (START), and note a
step that failed after the provider accepted it (bounce, dropped, undelivered SMS): the
ledger row keeps status `sent` (it was handed over and paid for; reports count it as sent
and bounced from these events) with the failure as its reason, and the cascade is
signalled to move on to the next channel at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.client import Client

from omnicascade.consent import suppress
from omnicascade.customers import ADDRESS_FIELD
from omnicascade.db.models import Customer, Delivery, DeliveryEvent, Suppression, utcnow
from omnicascade.db.session import session_scope
from omnicascade.signals import signal_step_failed

log = logging.getLogger(__name__)
REACHED = ("sent", "unknown", "sending")  # accepted, or possibly accepted, by the provider


@dataclass
class Feedback:
    provider: str
    event: str
    provider_event_id: str
    delivery_id: str | None = None
    occurred_at: datetime | None = None
    data: dict[str, Any] | None = None
    # (channel, address, reason); address None = the delivery's own address
    suppress: tuple[str, str | None, str] | None = None
    # (channel, address, reasons): the person opted back in; lifts only these reasons
    lift: tuple[str, str, tuple[str, ...]] | None = None
    fail: str | None = None  # the step did not reach the customer, for this reason


@dataclass
class Outcome:
    recorded: int = 0
    duplicates: int = 0
    failed_steps: list[str] = field(default_factory=list)  # delivery ids to signal


def event_id(provider: str, raw: Any) -> str:
    """A stable id for an event the provider did not number: the hash of its content."""
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    return f"{provider}:sha256:{digest[:48]}"


def from_unix(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def record_feedback(items: list[Feedback], *, session: Session) -> Outcome:
    """Store every new event (before acting on it) and apply its effects, in one transaction.
    The caller signals `failed_steps` after the commit (see `signal_failed_steps`)."""
    out = Outcome()
    for item in items:
        if session.scalar(select(DeliveryEvent.id).where(
                DeliveryEvent.provider_event_id == item.provider_event_id)) is not None:
            out.duplicates += 1
            continue
        try:
            with session.begin_nested():  # a concurrent duplicate loses here, harmlessly
                session.add(DeliveryEvent(
                    delivery_id=item.delivery_id, provider=item.provider, event=item.event,
                    provider_event_id=item.provider_event_id,
                    occurred_at=item.occurred_at or utcnow(), data=item.data))
        except IntegrityError:
            out.duplicates += 1
            continue
        out.recorded += 1
        delivery = session.get(Delivery, item.delivery_id) if item.delivery_id else None
        if item.suppress:
            channel, address, reason = item.suppress
            address = (delivery.to_address if delivery and delivery.channel == channel
                       and delivery.to_address else None) or address
            if address:
                suppress(channel, address, reason[:64], session=session)
        if item.lift:
            lift_suppression(*item.lift, session=session)
        if item.fail and delivery is not None and delivery.status in REACHED:
            delivery.reason = item.fail[:500]
            if delivery.phase == "cascade":
                out.failed_steps.append(delivery.id)
                delivery.failure_signal_due = utcnow()
        session.flush()
    return out


def lift_suppression(channel: str, address: str, reasons: tuple[str, ...], *,
                     session: Session) -> int:
    result = session.execute(delete(Suppression).where(
        Suppression.channel == channel, Suppression.address == address,
        Suppression.reason.in_(reasons)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def forget_address(customer_id: str, channel: str, address: str, *, session: Session) -> bool:
    """Remove a dead address (an unregistered push token) from the customer, if still set."""
    customer = session.get(Customer, customer_id)
    column = ADDRESS_FIELD[channel]
    if customer is None or getattr(customer, column) != address:
        return False
    setattr(customer, column, None)
    customer.updated_at = utcnow()
    return True


async def signal_failed_steps(client: Client | None, delivery_ids: list[str],
                              db_url: str) -> int:
    """Tell each cascade its step failed, and clear the marker of those told (or already
    ended). Without Temporal the markers stay: the worker's reconciler signals them later,
    and until then the cascade simply waits out its `wait`. Returns how many were told."""
    if not delivery_ids:
        return 0
    if client is None:
        log.warning("Temporal unavailable: %d failed steps not signalled yet", len(delivery_ids))
        return 0
    outcomes = await asyncio.gather(*(signal_step_failed(client, d) for d in delivery_ids))
    settled = [d for d, o in zip(delivery_ids, outcomes, strict=True) if o != "later"]
    if settled:
        def clear() -> None:
            with session_scope(db_url) as session:
                session.execute(update(Delivery).where(Delivery.id.in_(settled))
                                .values(failure_signal_due=None))
        await asyncio.to_thread(clear)
    return sum(o == "signalled" for o in outcomes)


def unsignalled_failures(older_than_s: float, *, session: Session) -> list[str]:
    """Failed cascade steps whose cascade was not told (Temporal was down, the API died)."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    return list(session.scalars(select(Delivery.id).where(
        Delivery.failure_signal_due.is_not(None), Delivery.failure_signal_due < cutoff)
        .limit(1000)))
