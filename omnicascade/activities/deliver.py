"""deliver_step: the only place a message leaves omnicascade.

Order matters and is the whole point of this module:
1. the delivery ledger says whether this step already happened (promise 2);
2. the send-time guards decide Send / Skip / Defer (cascade/decision.py): a conversion
   since entry, a stopped run or ended cascade, a paused run (held), a missing or
   suppressed address, no consent, WhatsApp's closed 24 h window, quiet hours, the cap;
3. the message is rendered outside any database transaction (a slow template holds no
   lock that a conversion would wait for);
4. the provider's pacing slot is waited for (channels/ratelimit.py);
5. the guards decide again in the short transaction that commits the row as `sending`
   (and stamps `sending_at`) right before the provider call, so nothing slow sits between
   the last guard and the send; a retry that finds `sending` marks it `unknown` and never
   resends.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from omnicascade.activities.ledger import (
    Facts,
    claim,
    complete_enrollment,
    finish,
    load_facts,
    mark_unknown,
    record,
)
from omnicascade.campaign.templates import whatsapp
from omnicascade.campaign.templates.helpers import favorite_product
from omnicascade.campaign.templates.render import RenderError, build_context, render_message
from omnicascade.campaign.variants import variant_promo
from omnicascade.cascade.decision import Decision, Defer, Send, Skip, decide
from omnicascade.channels.base import (
    Channel,
    Message,
    PermanentSendError,
    RetryableSendError,
    pace,
)
from omnicascade.channels.outbox import OutboxChannel
from omnicascade.channels.retry_after import bounded_delay
from omnicascade.channels.sms_segments import segments, sms_body
from omnicascade.channels.telegram_link import link_for_templates, uses_telegram_link
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.customers.links import unsubscribe_url
from omnicascade.db.session import read_scope, session_scope
from omnicascade.telemetry import LOG_IDS, MESSAGES, PROVIDER_SECONDS, bounded
from omnicascade.telemetry import channel as channel_label
from omnicascade.vocabulary import DeliveryStatus, SkipReason, step_label
from omnicascade.workflows.types import ACTIVITY_DELIVER, DeliverInput, DeliverResult, StepPlan

T = TypeVar("T")
log = logging.getLogger("omnicascade.deliver")
# Rendering is CPU work under the GIL: one thread per process, so a burst of slow templates
# (each bounded by the render budget) cannot starve the event loop that serves the API
# and the worker in the same process. An ordinary message renders in about a millisecond.
RENDERING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
# Set when this attempt found the step already settled (a retry after a lost completion):
# its outcome was counted by the attempt that settled it.
_REPEATED: contextvars.ContextVar[bool] = contextvars.ContextVar("repeated", default=False)
_REASONS = frozenset(SkipReason)
_STATUSES = frozenset(DeliveryStatus)


def count_outcome(step_channel: str, status: str, reason: str | None) -> None:
    """The one place a step's outcome is counted (omnicascade_messages_total). The reason
    label is a closed vocabulary: a skip/defer reason, or for a failure only where it
    failed (template or provider) — a provider's own words are free text."""
    if status in (DeliveryStatus.SKIPPED, DeliveryStatus.DEFERRED):
        why = bounded(reason, _REASONS)
    elif status in (DeliveryStatus.FAILED, DeliveryStatus.RETRYING):
        why = "template" if (reason or "").startswith("template:") else "provider"
    else:
        why = ""
    MESSAGES.labels(channel_label(step_channel), bounded(status, _STATUSES), why).inc()


def _clock() -> datetime:
    """Naive UTC now: the later of the wall clock and the attempt's schedule time, so quiet
    hours follow the workflow's clock (the time-skipping test server drives them across a
    DST night)."""
    now = now_utc()
    try:
        scheduled = activity.info().current_attempt_scheduled_time
    except RuntimeError:  # called outside an activity (tests, tools)
        return now
    return max(now, scheduled.astimezone(UTC).replace(tzinfo=None))


def record_decision(facts: Facts, decision: Decision, *, session: Session) -> DeliverResult:
    """Write a Skip or a Defer (quiet hours, or held while the run is paused) to the
    ledger. A deferral is decided on the run's clock; the ledger and the workflow's timer
    get the wall-clock instant (a rehearsal's quiet night lasts seconds)."""
    if isinstance(decision, Defer):
        until = facts.clock.wall(decision.until)
        result = record(facts, DeliveryStatus.DEFERRED, decision.reason,
                        session=session, deferred_until=until)
        if result.status == DeliveryStatus.DEFERRED:
            result.defer_until = until.isoformat()
        return result
    assert isinstance(decision, Skip)
    return record(facts, DeliveryStatus.SKIPPED, decision.reason, session=session)


def compose(facts: Facts, step: StepPlan, enrollment_id: str, settings: Settings,
            telegram_link: str | None) -> Message:
    """Render the message for this customer (raises RenderError). A whatsapp step also
    renders its approved template's variables, or sends its free-form body (the decision
    let it through only inside the 24 h window: skip `window_closed` otherwise)."""
    spec = facts.spec
    assert spec is not None and isinstance(facts.situation.address, str)
    promo_spec = variant_promo(spec, facts.variant)
    unsub = unsubscribe_url(settings, enrollment_id, step.channel)
    context = build_context(
        customer=facts.customer, event=facts.event_data,
        promo={"code": facts.promo_code,
               "discount": promo_spec.discount if promo_spec else None}
        if facts.promo_code else {},
        campaign={"name": spec.campaign, "description": spec.description,
                  "run_id": facts.run_id},
        unsubscribe_url=unsub, step={"key": step.key, "channel": step.channel},
        variant=facts.variant, favorite_product=favorite_product(facts.orders),
        telegram_link=telegram_link)
    rendered = render_message(facts.templates, context, template=step.template)
    data = whatsapp.message_data(facts.templates, context, template=step.template) \
        if step.channel == "whatsapp" else {}
    return Message(
        delivery_id=facts.delivery_id, channel=step.channel, to=facts.situation.address,
        # an SMS goes out (and is counted) as Smart Encoding leaves it (sms_segments.py)
        body=sms_body(rendered.body) if step.channel == "sms" else rendered.body,
        subject=rendered.subject, html=rendered.html,
        title=rendered.title, customer_id=str(facts.base["customer_id"]), run_id=facts.run_id,
        step=step.key, campaign=spec.campaign, unsubscribe_url=unsub, data=data)


def _warn(run_id: str, inp: DeliverInput, outcome: str, reason: str) -> None:
    """One line for the operator per failed send: which run, enrollment, step and channel,
    and why — never the address or any other PII (a provider's reason names none)."""
    log.warning("send %s: run=%s enrollment=%s step=%s channel=%s reason=%s", outcome,
                run_id, inp.enrollment_id, step_label(inp.step.key), inp.step.channel,
                reason[:300])


def _redact(reason: str, message: Message) -> str:
    """A provider's reason without the recipient's address or id: it is returned to the
    workflow (Temporal history) and logged, and neither may hold personal data."""
    for value in (message.to, message.customer_id):
        if value and len(value) > 2:
            reason = reason.replace(value, "<recipient>")
    return reason


def _retry(exc: RetryableSendError) -> ApplicationError:
    """Temporal retries the activity, after the provider's delay when it gave one. Bounded
    here too (a channel that forgot to): Temporal does not cap next_retry_delay by the retry
    policy, and a non-finite delay must not turn every attempt into a traceback."""
    delay = bounded_delay(exc.retry_after)
    wait = timedelta(seconds=delay) if delay else None
    return ApplicationError(f"not sent, will retry: {exc.reason}",
                            next_retry_delay=wait or None)  # under 1 µs: the policy's


class DeliverActivities:
    def __init__(self, settings: Settings, channels: dict[str, Channel]):
        self.settings = settings
        self.channels = channels
        self.outbox = OutboxChannel(settings.db_url)  # a rehearsal's, whatever is configured
        self.db_url = settings.db_url  # resolved once: it touches the file system

    def _tx(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with session_scope(self.db_url) as session:
            return fn(*args, session=session, **kwargs)

    def _read_tx(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with read_scope(self.db_url) as session:
            return fn(*args, session=session, **kwargs)

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(self._tx, fn, *args, **kwargs)

    async def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(self._read_tx, fn, *args, **kwargs)

    @activity.defn(name=ACTIVITY_DELIVER)
    async def deliver_step(self, inp: DeliverInput) -> DeliverResult:
        LOG_IDS.set({"enrollment_id": inp.enrollment_id, "step": step_label(inp.step.key),
                     "channel": inp.step.channel})
        _REPEATED.set(False)
        try:
            result = await self._deliver(inp)
        except ApplicationError as exc:  # not sent, Temporal retries it
            count_outcome(inp.step.channel, DeliveryStatus.RETRYING, str(exc.message))
            raise
        if not _REPEATED.get():
            count_outcome(inp.step.channel, result.status, result.reason)
        if inp.completes and result.status != DeliveryStatus.DEFERRED:
            # The cascade ends with this step: record it here and spare the workflow a
            # separate finish activity (a retry lands here again, so it cannot be lost).
            await self._db(complete_enrollment, inp.enrollment_id,
                           stopped=result.status == DeliveryStatus.SKIPPED
                           and result.reason == SkipReason.STOPPED)
        return result

    async def _deliver(self, inp: DeliverInput) -> DeliverResult:
        now = _clock()
        recheck = self.settings.pause_recheck_s
        facts = await self._read(load_facts, inp, now, recheck_s=recheck)
        LOG_IDS.set({**(LOG_IDS.get() or {}), "run_id": facts.run_id})
        if facts.stored is not None:
            _REPEATED.set(True)
            return facts.stored
        if facts.row_status == DeliveryStatus.SENDING:
            return await self._db(mark_unknown, facts.delivery_id)
        decision = decide(facts.situation)
        if not isinstance(decision, Send):
            return await self._db(record_decision, facts, decision)
        try:
            link = None
            if uses_telegram_link(facts.templates):  # a one-time token: a (rare) write
                link = await self._db(link_for_templates, facts.templates,
                                      str(facts.base["customer_id"]), self.settings.telegram)
            message = await asyncio.get_running_loop().run_in_executor(
                RENDERING, compose, facts, inp.step, inp.enrollment_id, self.settings, link)
        except RenderError as exc:
            _warn(facts.run_id, inp, "failed", f"template: {exc}")
            return await self._db(record, facts, DeliveryStatus.FAILED, f"template: {exc}")
        channel = self.channels[message.channel] if facts.sends_live else self.outbox
        try:
            await pace(channel, message)
        except RetryableSendError as exc:  # the slot is far off: come back for it
            await self._db(record, facts, DeliveryStatus.RETRYING, exc.reason)
            raise _retry(exc) from None
        try:
            facts, last = await self._db(claim, inp, now, recheck_s=recheck)
        except IntegrityError:  # a concurrent attempt inserted the row first: re-read it
            facts, last = await self._db(claim, inp, now, recheck_s=recheck)
        if isinstance(last, DeliverResult):
            _REPEATED.set(last.status != DeliveryStatus.UNKNOWN)  # unknown: settled just now
            return last
        if not isinstance(last, Send):
            return await self._db(record_decision, facts, last)
        if last.address != message.to:  # the address changed while rendering
            message = replace(message, to=last.address)
        return await self._send(channel, message, inp)

    async def _send(self, channel: Channel, message: Message,
                    inp: DeliverInput) -> DeliverResult:
        started = time.perf_counter()
        try:
            try:
                sent = await channel.send(message)
            finally:
                PROVIDER_SECONDS.labels(channel_label(message.channel)).observe(
                    time.perf_counter() - started)
        except RetryableSendError as exc:
            exc.reason = _redact(exc.reason, message)
            await self._db(finish, message.delivery_id, DeliveryStatus.RETRYING, exc.reason,
                           channel.provider, None)
            raise _retry(exc) from None
        except PermanentSendError as exc:
            _warn(message.run_id, inp, "failed", _redact(exc.reason, message))
            return await self._db(finish, message.delivery_id, DeliveryStatus.FAILED,
                                  _redact(exc.reason, message), channel.provider, None,
                                  suppress_as=(exc.suppress_reason or exc.reason)
                                  if exc.suppress else None, forget=exc.forget)
        except Exception as exc:  # ambiguous: it may have gone out
            _warn(message.run_id, inp, "unknown", type(exc).__name__)
            return await self._db(finish, message.delivery_id, DeliveryStatus.UNKNOWN,
                                  _redact(f"{type(exc).__name__}: {exc}", message),
                                  channel.provider, None)
        # what the provider billed if it says, else our count of the exact body sent
        billed = sent.segments or (segments(message.body) if message.channel == "sms" else None)
        return await self._db(finish, message.delivery_id, DeliveryStatus.SENT, None,
                              sent.provider, sent.message_id, segments=billed,
                              settings=self.settings)
