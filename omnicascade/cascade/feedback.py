"""Provider feedback: store each event once, then act on it.

A `Feedback` is one provider event already verified and parsed by its provider module
(channels/callbacks.py). Recording is idempotent on the provider's event id, so a
redelivered webhook changes nothing twice. Acting on it may suppress the address for every
campaign (bounce, spam report, unsubscribe, STOP, blocked bot), lift a suppression the
person themselves revoked (START), bind a Telegram chat, and note a step that failed after
the provider accepted it (bounce, dropped, undelivered SMS): the ledger row keeps status
`sent` (it was handed over and paid for; reports count it as sent and bounced from these
events) with the failure as its reason, and the cascade is signalled to move on to the
next channel at once. An inbound SMS or WhatsApp message is stored with its sender (the
24 h window) and, unless a keyword, recorded as a `reply` on the latest message sent to
that number on its channel (cascade/conversations.py), which `skip_if: [replied]` sees.

An open no person made is stored as `machine_open` (vocabulary.MACHINE_OPEN): the provider
flagged it (SendGrid's `sg_machine_open`: Apple Mail Privacy Protection fetching the
pixel), or it came less than a second after its message's delivery (whichever of the two
events arrived first). It proves delivery; reports and `skip_if: [opened]` never count it
as an open. The provider's own payload is kept as it came (`data`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session
from temporalio.client import Client

from omnicascade.cascade.conversations import inbound_address, replied_delivery
from omnicascade.cascade.temporal import signal_step_failed
from omnicascade.channels.callbacks import Feedback, FeedbackOutcome, content_id
from omnicascade.channels.telegram_link import bind_chat
from omnicascade.clock import now_utc
from omnicascade.customers.consent import lift_suppression, suppress
from omnicascade.db.models import Delivery, DeliveryEvent
from omnicascade.db.session import session_scope
from omnicascade.validation import unstorable
from omnicascade.vocabulary import MACHINE_OPEN, DeliveryStatus, Phase

log = logging.getLogger(__name__)
# accepted, or possibly accepted, by the provider: a later failure report applies to them
HANDED_OVER = (DeliveryStatus.SENT, DeliveryStatus.UNKNOWN, DeliveryStatus.SENDING)
OPENS = ("open", "opened")          # an email pixel (a messenger's `read` is a person)
DELIVERIES = ("delivered", "delivery")
# An open stamped less than this after its message's delivery (or before it) is a
# machine's: no person opens a message that fast. SendGrid stamps whole seconds, so there
# it is an open in the same second as the delivery.
MACHINE_WINDOW = timedelta(seconds=1)
REPLY = "reply"  # an inbound message answering a delivery (vocabulary.REPLY_EVENTS)


def _machine_open(item: Feedback, at: datetime, *, session: Session) -> str:
    """The event name to store: `machine_open` for an open less than MACHINE_WINDOW after
    its message's delivery; and a delivery flags such opens that arrived before it."""
    if not item.delivery_id or item.event not in OPENS + DELIVERIES:
        return item.event
    if item.event in OPENS:
        delivered = session.scalar(select(func.min(DeliveryEvent.occurred_at)).where(
            DeliveryEvent.delivery_id == item.delivery_id,
            DeliveryEvent.event.in_(DELIVERIES)))
        return MACHINE_OPEN if delivered and at < delivered + MACHINE_WINDOW else item.event
    session.execute(update(DeliveryEvent).where(
        DeliveryEvent.delivery_id == item.delivery_id, DeliveryEvent.event.in_(OPENS),
        DeliveryEvent.occurred_at < at + MACHINE_WINDOW).values(event=MACHINE_OPEN))
    return item.event


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
            delivery.failure_signal_due = now_utc()


def _problem(item: Feedback) -> str | None:
    """Why the item cannot be stored as it is (the provider's own verdict first)."""
    if item.reject:
        return item.reject
    problem = unstorable([item.provider_event_id, item.delivery_id, item.event, item.data,
                          item.suppress, item.lift, item.inbound, item.bind and (item.bind.token,
                                                                   item.bind.address)])
    return f"{problem} (in the event or its data)" if problem else None


def _printable(value: object, limit: int) -> str | None:
    """Any value as text a database can hold: lone surrogates and NUL escaped."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text[:limit]


def _reject(item: Feedback, reason: str, out: FeedbackOutcome, *, session: Session) -> None:
    """Record an item that cannot be stored or applied, as event `rejected` with the reason
    and the item as text (a redelivery records it once). It changes nothing else."""
    out.rejected += 1
    log.warning("%s webhook: rejected an event: %s", item.provider, reason)
    event_id = content_id(item.provider, ["rejected", item.provider_event_id])
    try:
        with session.begin_nested():
            if session.scalar(select(DeliveryEvent.id).where(
                    DeliveryEvent.provider_event_id == event_id)) is None:
                session.add(DeliveryEvent(
                    provider=item.provider, event="rejected", provider_event_id=event_id,
                    occurred_at=now_utc(), data={
                        "reason": _printable(reason, 500),
                        "event": _printable(item.event, 64),
                        "provider_event_id": _printable(item.provider_event_id, 300),
                        "delivery_id": _printable(item.delivery_id, 200),
                        "item": _printable(item.data, 4000)}))
    except (DataError, IntegrityError, UnicodeError):  # only the log line is left
        log.exception("%s webhook: could not record a rejected event", item.provider)


def _record(item: Feedback, out: FeedbackOutcome, *, session: Session) -> bool:
    """Store and apply one item; False if it was stored before (a redelivery)."""
    if session.scalar(select(DeliveryEvent.id).where(
            DeliveryEvent.provider_event_id == item.provider_event_id)) is not None:
        return False
    at = item.occurred_at or now_utc()
    address = None
    if item.inbound:  # the sender is kept (the 24 h window); a reply joins its delivery
        address = inbound_address(*item.inbound)
        linked = replied_delivery(*item.inbound, at, session=session) if (
            item.replies and not item.delivery_id) else None
        if linked:
            item.delivery_id, item.event = linked, REPLY
    try:
        with session.begin_nested():  # a concurrent duplicate loses here, harmlessly
            session.add(DeliveryEvent(
                delivery_id=item.delivery_id, provider=item.provider,
                event=_machine_open(item, at, session=session), address=address,
                provider_event_id=item.provider_event_id, occurred_at=at, data=item.data))
    except IntegrityError:
        return False
    _apply(item, out, session=session)
    session.flush()
    return True


def _store(item: Feedback, out: FeedbackOutcome, *, session: Session) -> str | None:
    """Store and apply one item in a savepoint of its own; why not, if the database refused
    it (then nothing of it is left). Its effects reach `out` only once they are kept."""
    mine = FeedbackOutcome()
    try:
        with session.begin_nested():
            recorded = _record(item, mine, session=session)
    except (DataError, IntegrityError, UnicodeError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    if not recorded:
        out.duplicates += 1
        return None
    out.recorded += 1
    out.new.add(item.provider_event_id)
    out.failed_steps += mine.failed_steps
    out.bound.update(mine.bound)
    return None


def record_feedback(items: list[Feedback], *, session: Session) -> FeedbackOutcome:
    """Store every new event (before acting on it) and apply its effects, in one transaction,
    each item in a savepoint of its own: an item that cannot be stored or applied (text no
    database can hold, a value too long for its column, one the provider could not parse)
    is rolled back alone and recorded as `rejected`, and the others are kept, so that the
    provider can be answered 2xx. A database that is down still fails the whole request
    (and the provider retries it later).
    The caller signals `failed_steps` after the commit (see `signal_failed_steps`)."""
    out = FeedbackOutcome()
    for item in items:
        problem = _problem(item) or _store(item, out, session=session)
        if problem:
            _reject(item, problem, out, session=session)
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
    cutoff = now_utc() - timedelta(seconds=older_than_s)
    return list(session.scalars(select(Delivery.id).where(
        Delivery.failure_signal_due.is_not(None), Delivery.failure_signal_due < cutoff)
        .limit(1000)))
