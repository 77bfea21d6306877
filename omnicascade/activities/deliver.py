"""deliver_step: the only place a message leaves omnicascade.

Order matters and is the whole point of this module:
1. the delivery ledger row decides whether this step already happened (promise 2);
2. a matching conversion recorded since the enrollment started skips the send (promise 1);
3. a suppressed address or a missing one skips the send (promise 3);
4. the row is committed as `sending` BEFORE the provider is called, and marked `sent`
   after; a retry that finds `sending` marks it `unknown` and never resends.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from omnicascade.channels.base import Channel, Message, PermanentSendError, RetryableSendError
from omnicascade.channels.telegram_link import link_for_templates
from omnicascade.config import Settings
from omnicascade.customers import ADDRESS_FIELD, customer_dict, customer_orders
from omnicascade.db.models import (
    ConversionEvent,
    Customer,
    Delivery,
    Enrollment,
    Run,
    Suppression,
    utcnow,
)
from omnicascade.db.session import session_scope
from omnicascade.enroll import run_spec, variant_promo
from omnicascade.links import unsubscribe_url
from omnicascade.quiet_hours import customer_zone, quiet_until
from omnicascade.spec import FrequencyCap
from omnicascade.templates.helpers import favorite_product
from omnicascade.templates.render import RenderError, build_context, render_message
from omnicascade.workflows.types import DeliverInput, DeliverResult, StepPlan

FINAL = ("sent", "failed", "skipped", "unknown")


@dataclass
class Prepared:
    message: Message | None = None
    result: DeliverResult | None = None


def _result(row: Delivery) -> DeliverResult:
    return DeliverResult(row.id, row.status, row.reason, row.provider_message_id)


def _record(session: Session, row: Delivery | None, base: dict, status: str,
            reason: str | None) -> DeliverResult:
    if row is None:
        row = Delivery(**base)
        session.add(row)
    row.status, row.reason = status, reason
    session.flush()
    return _result(row)


def converted_since_enrollment(enrollment: Enrollment, *, session: Session) -> bool:
    if not enrollment.conversion_events:
        return False
    since = enrollment.enrolled_at - timedelta(seconds=enrollment.lookback_s)
    return bool(session.scalar(select(exists().where(
        ConversionEvent.customer_id == enrollment.customer_id,
        ConversionEvent.type.in_(enrollment.conversion_events),
        ConversionEvent.occurred_at >= since))))


def is_suppressed(channel: str, address: str, *, session: Session) -> bool:
    return bool(session.scalar(select(exists().where(Suppression.channel == channel,
                                                     Suppression.address == address))))


def over_frequency_cap(cap: FrequencyCap, customer_id: str, delivery_id: str, channel: str,
                       now: datetime, *, session: Session) -> bool:
    """Messages to this customer in the window, across every campaign. The customer row is
    locked first (SQLite: the transaction already holds the write lock), so two campaigns
    racing for the same customer are serialised and cannot both slip under the cap."""
    if cap.channels and channel not in cap.channels:
        return False
    session.execute(select(Customer.id).where(Customer.id == customer_id).with_for_update())
    q = select(func.count()).select_from(Delivery).where(
        Delivery.customer_id == customer_id, Delivery.id != delivery_id,
        Delivery.status.in_(("sent", "unknown", "sending")),
        Delivery.created_at >= now - timedelta(seconds=cap.per))
    if cap.channels:
        q = q.where(Delivery.channel.in_(cap.channels))
    return int(session.scalar(q) or 0) >= cap.max


def prepare(inp: DeliverInput, settings: Settings, *, session: Session,
            now: datetime | None = None) -> Prepared:
    """Decide what this attempt does. `now` (naive UTC) is the later of the wall clock and
    Temporal's schedule time, so quiet hours follow the workflow's clock (and the
    time-skipping test server can drive them across a DST night)."""
    now = now or utcnow()
    step: StepPlan = inp.step
    delivery_id = f"{inp.enrollment_id}:{step.key}"
    row = session.get(Delivery, delivery_id)
    if row is not None and row.status in FINAL:
        return Prepared(result=_result(row))
    if row is not None and row.status == "sending":
        # A previous attempt died between "about to call the provider" and "provider
        # answered": it may have gone out. Never send twice; surface it instead.
        return Prepared(result=_record(session, row, {}, "unknown",
                                       "attempt died during the provider call; not resent"))
    enrollment = session.get(Enrollment, inp.enrollment_id)
    if enrollment is None:
        raise ApplicationError(f"enrollment {inp.enrollment_id} not found", non_retryable=True)
    run = session.get(Run, enrollment.run_id)
    assert run is not None
    customer = session.get(Customer, enrollment.customer_id)
    base = dict(id=delivery_id, enrollment_id=enrollment.id, run_id=run.id,
                customer_id=enrollment.customer_id, step_key=step.key, step_index=step.index,
                phase=step.phase, channel=step.channel, template=step.template, attempts=0)
    if step.phase == "cascade" and converted_since_enrollment(enrollment, session=session):
        return Prepared(result=_record(session, row, base, "skipped", "converted"))
    address = getattr(customer, ADDRESS_FIELD[step.channel], None) if customer else None
    if customer is None or not address:  # (no customer: no address either)
        return Prepared(result=_record(session, row, base, "skipped", "no_address"))
    if is_suppressed(step.channel, address, session=session):
        return Prepared(result=_record(session, row, base, "skipped", "unsubscribed"))
    if (customer.consents or {}).get(step.channel, True) is False:
        return Prepared(result=_record(session, row, base, "skipped", "no_consent"))
    spec = run_spec(run)
    if spec.quiet_hours:
        zone = customer_zone(customer.timezone, customer.phone, spec.timezone)
        until = quiet_until(now.replace(tzinfo=UTC), zone, spec.quiet_hours.start,
                            spec.quiet_hours.end)
        if until is not None and spec.quiet_hours.mode == "skip":
            return Prepared(result=_record(session, row, base, "skipped", "quiet_hours"))
        if until is not None:
            _record(session, row, base, "deferred", "quiet_hours")
            delivery = session.get(Delivery, delivery_id)
            assert delivery is not None
            delivery.deferred_until = until.replace(tzinfo=None)
            return Prepared(result=DeliverResult(delivery_id, "deferred", "quiet_hours",
                                                 defer_until=until.isoformat()))
    # The cap window is measured on the ledger's own (wall) clock, like created_at.
    if spec.frequency_cap and over_frequency_cap(spec.frequency_cap, customer.id, delivery_id,
                                                 step.channel, utcnow(), session=session):
        return Prepared(result=_record(session, row, base, "skipped", "frequency_cap"))
    promo_spec = variant_promo(spec, enrollment.variant)
    unsub = unsubscribe_url(settings, enrollment.id, step.channel)
    try:
        rendered = render_message(
            run.snapshot["templates"].get(step.template, {}),
            build_context(customer=_customer_dict(customer),
                          event=enrollment.event_data,
                          promo={"code": enrollment.promo_code,
                                 "discount": promo_spec.discount if promo_spec else None}
                          if enrollment.promo_code else {},
                          campaign={"name": spec.campaign, "description": spec.description,
                                    "run_id": run.id},
                          unsubscribe_url=unsub,
                          step={"key": step.key, "channel": step.channel},
                          variant=enrollment.variant,
                          favorite_product=_favorite(run, step.template, customer.id,
                                                     session=session),
                          telegram_link=link_for_templates(
                              run.snapshot["templates"].get(step.template, {}),
                              enrollment.customer_id,
                              session=session)),
            template=step.template)
    except RenderError as exc:
        return Prepared(result=_record(session, row, base, "failed", f"template: {exc}"))
    if row is None:
        row = Delivery(**base)
        session.add(row)
    row.status, row.reason, row.to_address = "sending", None, address
    row.attempts = (row.attempts or 0) + 1
    session.flush()
    return Prepared(message=Message(
        delivery_id=delivery_id, channel=step.channel, to=address, body=rendered.body,
        subject=rendered.subject, html=rendered.html, title=rendered.title,
        customer_id=enrollment.customer_id, run_id=run.id, step=step.key,
        campaign=spec.campaign, unsubscribe_url=unsub))


def _favorite(run: Run, template: str, customer_id: str, *, session: Session) -> str | None:
    sources = run.snapshot["templates"].get(template, {})
    if not any("favorite_product" in src for src in sources.values()):
        return None  # only query order history for templates that use it
    return favorite_product(customer_orders(customer_id, session=session))


def _customer_dict(customer: Customer | None) -> dict:
    return customer_dict(customer) if customer else {}


def finish(delivery_id: str, status: str, reason: str | None, provider: str | None,
           message_id: str | None, suppress: tuple[str, str] | None = None, *,
           session: Session, segments: int | None = None, unit_cost: float = 0.0,
           forget: bool = False) -> DeliverResult:
    row = session.get(Delivery, delivery_id)
    assert row is not None
    row.status, row.reason, row.provider, row.provider_message_id = (status, reason, provider,
                                                                     message_id)
    if status == "sent":
        row.sent_at = utcnow()
        row.segments = segments
        row.cost = round(unit_cost * (segments or 1), 6)
    if suppress or forget:
        # Lazy: feedback imports consent, which imports this module.
        from omnicascade.consent import suppress as add_suppression
        from omnicascade.feedback import forget_address
        if suppress:  # idempotent: another campaign may have suppressed it meanwhile
            add_suppression(suppress[0], suppress[1], (reason or "")[:64], session=session)
        if forget and row.to_address:  # a dead push token: remove it from the customer
            forget_address(row.customer_id, row.channel, row.to_address, session=session)
    session.flush()
    return _result(row)


def complete_enrollment(enrollment_id: str, *, session: Session) -> None:
    row = session.get(Enrollment, enrollment_id)
    if row is not None and row.finished_at is None:
        row.status, row.finished_at = "completed", utcnow()


def _clock() -> datetime:
    """Naive UTC now: the later of the wall clock and the attempt's schedule time."""
    now = utcnow()
    try:
        scheduled = activity.info().current_attempt_scheduled_time
    except RuntimeError:  # called outside an activity (tests, tools)
        return now
    return max(now, scheduled.astimezone(UTC).replace(tzinfo=None))


class DeliverActivities:
    def __init__(self, settings: Settings, channels: dict[str, Channel]):
        self.settings = settings
        self.channels = channels
        self.db_url = settings.db_url  # resolved once: it touches the file system

    def _tx(self, fn, *args, **kwargs):  # noqa: ANN001, ANN202
        with session_scope(self.db_url) as session:
            return fn(*args, session=session, **kwargs)

    async def _db(self, fn, *args, **kwargs):  # noqa: ANN001, ANN202
        return await asyncio.to_thread(self._tx, fn, *args, **kwargs)

    @activity.defn(name="deliver_step")
    async def deliver_step(self, inp: DeliverInput) -> DeliverResult:
        result = await self._deliver(inp)
        if inp.completes and result.status != "deferred":
            # The cascade ends with this step: record it here and spare the workflow a
            # separate finish activity (a retry lands here again, so it cannot be lost).
            await self._db(complete_enrollment, inp.enrollment_id)
        return result

    async def _deliver(self, inp: DeliverInput) -> DeliverResult:
        now = _clock()
        try:
            prepared: Prepared = await self._db(prepare, inp, self.settings, now=now)
        except IntegrityError:  # a concurrent attempt inserted the row first: re-read it
            prepared = await self._db(prepare, inp, self.settings, now=now)
        if prepared.result is not None:
            return prepared.result
        message = prepared.message
        assert message is not None
        channel = self.channels[message.channel]
        try:
            sent = await channel.send(message)
        except RetryableSendError as exc:
            await self._db(finish, message.delivery_id, "retrying", exc.reason,
                           channel.provider, None)
            raise ApplicationError(f"not sent, will retry: {exc.reason}",
                                   next_retry_delay=timedelta(seconds=exc.retry_after)
                                   if exc.retry_after else None) from None
        except PermanentSendError as exc:
            return await self._db(finish, message.delivery_id, "failed", exc.reason,
                                  channel.provider, None,
                                  (message.channel, message.to) if exc.suppress else None,
                                  forget=getattr(exc, "forget", False))
        except Exception as exc:  # noqa: BLE001 — ambiguous: it may have gone out
            return await self._db(finish, message.delivery_id, "unknown",
                                  f"{type(exc).__name__}: {exc}", channel.provider, None)
        return await self._db(finish, message.delivery_id, "sent", None, sent.provider,
                              sent.message_id, segments=sent.segments,
                              unit_cost=self.settings.unit_cost(message.channel))
