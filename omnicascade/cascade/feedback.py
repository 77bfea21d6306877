"""Provider feedback: store each event once, then act on it.

A `Feedback` is one provider event already verified and parsed by its provider module
(channels/feedback.py). Recording is idempotent on the provider's event id, so a
redelivered webhook changes nothing twice. Acting on it may suppress the address for every
campaign (bounce, spam report, unsubscribe, STOP, blocked bot), lift a suppression the
person themselves revoked (START), bind a Telegram chat, and note a step that failed after
the provider accepted it (bounce, dropped, undelivered SMS): the ledger row keeps status
`sent` (it was handed over and paid for; reports count it as sent and bounced from these
events) with the failure as its reason, and the cascade is signalled to move on to the
next channel at once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.client import Client

from omnicascade.cascade.temporal import signal_step_failed
from omnicascade.channels.feedback import Feedback, FeedbackOutcome
from omnicascade.channels.telegram_link import bind_chat
from omnicascade.customers.consent import lift_suppression, suppress
from omnicascade.db.models import Delivery, DeliveryEvent, utcnow
from omnicascade.db.session import session_scope
from omnicascade.vocabulary import DeliveryStatus, Phase

log = logging.getLogger(__name__)
# accepted, or possibly accepted, by the provider: a later failure report applies to them
HANDED_OVER = (DeliveryStatus.SENT, DeliveryStatus.UNKNOWN, DeliveryStatus.SENDING)


def _apply(item: Feedback, out: FeedbackOutcome, *, session: Session) -> None:
    delivery = session.get(Delivery, item.delivery_id) if item.delivery_id else None
    if item.suppress:
        channel, address, reason = item.suppress
        address = (delivery.to_address if delivery and delivery.channel == channel
                   and delivery.to_address else None) or address
        if address:
            suppress(channel, address, reason[:64], session=session)
    lift = item.lift
    if item.bind:
        bound = bind_chat(item.bind.token, item.bind.address, session=session,
                          max_age_days=item.bind.max_age_days)
        out.bound[item.provider_event_id] = bound
        lift = lift if bound else None  # a link that did not bind proves no consent
    if lift:
        lift_suppression(*lift, session=session)
    if item.fail and delivery is not None and delivery.status in HANDED_OVER:
        delivery.reason = item.fail[:500]
        if delivery.phase == Phase.CASCADE:
            out.failed_steps.append(delivery.id)
            delivery.failure_signal_due = utcnow()


def record_feedback(items: list[Feedback], *, session: Session) -> FeedbackOutcome:
    """Store every new event (before acting on it) and apply its effects, in one transaction.
    The caller signals `failed_steps` after the commit (see `signal_failed_steps`)."""
    out = FeedbackOutcome()
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
        out.new.add(item.provider_event_id)
        _apply(item, out, session=session)
        session.flush()
    return out


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
