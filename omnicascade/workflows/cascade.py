"""CustomerCascade: walk one customer through the campaign's channels until they convert.

For each step: deliver, then wait up to `wait` for a conversion. A step that could not
reach the customer (no address, unsubscribed, permanent failure) moves on at once. The
`conversion` signal stops the loop immediately, even mid-wait; the deliver activity
re-checks the database before every send, so a lost signal never leaks a message.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from omnicascade.vocabulary import WENT_OUT, DeliveryStatus, EnrollmentStatus, Phase, SkipReason
    from omnicascade.workflows import search
    from omnicascade.workflows.types import (
        ACTIVITY_DELIVER,
        ACTIVITY_FINISH,
        QUERY_PROGRESS,
        SIGNAL_CONVERSION,
        SIGNAL_STEP_FAILED,
        WORKFLOW,
        CascadeInput,
        ConversionSignal,
        DeliverInput,
        DeliverResult,
        FinishInput,
        Progress,
        StepPlan,
        TimelineEntry,
    )

GAVE_UP = "gave up after retries"


@workflow.defn(name=WORKFLOW)
class CustomerCascade:
    def __init__(self) -> None:
        self._converted = False
        self._conversion_event_id: str | None = None
        self._state = "starting"
        self._timeline: list[TimelineEntry] = []
        self._failed_steps: set[str] = set()

    @workflow.signal(name=SIGNAL_CONVERSION)
    def conversion(self, signal: ConversionSignal) -> None:
        if not self._converted:
            self._converted = True
            self._conversion_event_id = signal.event_id

    @workflow.signal(name=SIGNAL_STEP_FAILED)
    def step_failed(self, step_key: str) -> None:
        """A provider reported a permanent failure after accepting the message (e.g. an
        email bounce): stop waiting on that step and move to the next channel at once."""
        self._failed_steps.add(step_key)

    @workflow.query(name=QUERY_PROGRESS)
    def progress(self) -> Progress:
        return Progress(self._state, self._converted, self._conversion_event_id,
                        list(self._timeline))

    @workflow.run
    async def run(self, inp: CascadeInput) -> str:
        # OmnicascadeStatus=active was set when the workflow was started; no upsert needed.
        if inp.holdout:
            return await self._holdout(inp)
        recorded = False
        for n, step in enumerate(inp.steps):
            if self._converted:
                break
            self._state = f"sending step {step.key} ({step.channel})"
            last = n == len(inp.steps) - 1 and step.wait_s == 0
            result = await self._deliver(inp, step, completes=last)
            recorded = last and result.status != DeliveryStatus.DEFERRED and not result.gave_up
            if result.status == DeliveryStatus.SKIPPED and result.reason == SkipReason.CONVERTED:
                self._converted = True  # the send-time guard saw a conversion we were not told of
                break
            # unknown: it may have gone out, so it gets its wait
            if result.status in WENT_OUT and step.wait_s > 0 and not self._converted:
                self._state = f"waiting after step {step.key} ({step.channel})"
                key = step.key

                def stop_waiting(key: str = key) -> bool:
                    return self._converted or key in self._failed_steps

                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(stop_waiting,
                                                  timeout=self._scaled(inp, step.wait_s))

        outcome = EnrollmentStatus.CONVERTED if self._converted else EnrollmentStatus.COMPLETED
        if self._converted:
            self._set_status(inp, EnrollmentStatus.CONVERTED)
            for follow_up in inp.follow_ups:
                if follow_up.wait_s > 0:
                    self._state = f"follow-up {follow_up.key} due in {follow_up.wait_s}s"
                    await workflow.sleep(self._scaled(inp, follow_up.wait_s))
                self._state = f"sending follow-up {follow_up.key} ({follow_up.channel})"
                await self._deliver(inp, follow_up)
        if outcome == EnrollmentStatus.COMPLETED and recorded:
            # the last step's activity already wrote "completed" to the database
            self._state = outcome
            self._set_status(inp, outcome)
            return outcome
        return await self._finish(inp, outcome)

    async def _finish(self, inp: CascadeInput, outcome: str) -> str:
        self._state = outcome
        await workflow.execute_activity(
            ACTIVITY_FINISH, FinishInput(inp.enrollment_id, outcome,
                                             self._conversion_event_id),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1),
                                     maximum_interval=timedelta(minutes=1)))
        self._set_status(inp, outcome)
        return outcome

    async def _holdout(self, inp: CascadeInput) -> str:
        """The baseline: no messages at all, but the same window to convert in, so its
        conversion rate compares like for like with the variants."""
        self._state = "holdout: watching for a conversion, sending nothing"
        window = sum(s.wait_s for s in inp.steps)
        if window > 0 and not self._converted:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._converted,
                                              timeout=self._scaled(inp, window))
        return await self._finish(inp, EnrollmentStatus.CONVERTED if self._converted
                                  else EnrollmentStatus.COMPLETED)

    async def _deliver(self, inp: CascadeInput, step: StepPlan,
                       completes: bool = False) -> DeliverResult:
        """Deliver a step, honouring quiet-hour deferrals (a durable timer in the workflow,
        interrupted by a conversion for cascade steps)."""
        while True:
            result = await self._attempt(inp, step, completes)
            if result.status != DeliveryStatus.DEFERRED or not result.defer_until:
                return result
            until = datetime.fromisoformat(result.defer_until)
            delay = max(until - workflow.now(), timedelta(seconds=1))
            self._state = f"step {step.key} ({step.channel}) deferred by quiet hours until " \
                          f"{result.defer_until}"
            if step.phase == Phase.CASCADE:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(lambda: self._converted, timeout=delay)
                if self._converted:
                    return DeliverResult(result.delivery_id, DeliveryStatus.SKIPPED,
                                         SkipReason.CONVERTED)
            else:
                await workflow.sleep(delay)

    async def _attempt(self, inp: CascadeInput, step: StepPlan,
                       completes: bool = False) -> DeliverResult:
        try:
            result = await self._deliver_once(inp, step, completes)
        except ActivityError as err:
            # Retries exhausted on clearly-not-sent errors: record and move on, never stall.
            cause = getattr(err.cause, "message", None) or str(err.cause or err)
            result = DeliverResult(f"{inp.enrollment_id}:{step.key}", DeliveryStatus.FAILED,
                                   f"{GAVE_UP}: {cause}", gave_up=True)
        self._timeline.append(TimelineEntry(step.key, step.channel, result.status, result.reason,
                                            workflow.now().isoformat()))
        return result

    async def _deliver_once(self, inp: CascadeInput, step: StepPlan,
                            completes: bool) -> DeliverResult:
        return await workflow.execute_activity(
            ACTIVITY_DELIVER, DeliverInput(inp.enrollment_id, step, completes),
            result_type=DeliverResult,
            start_to_close_timeout=timedelta(seconds=inp.send_timeout_s),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=inp.send_initial_retry_s),
                                     backoff_coefficient=2.0,
                                     maximum_interval=timedelta(minutes=5),
                                     maximum_attempts=inp.send_max_attempts))

    @staticmethod
    def _scaled(inp: CascadeInput, seconds: int) -> timedelta:
        return timedelta(seconds=seconds / max(inp.time_scale, 1e-9))

    def _set_status(self, inp: CascadeInput, status: str) -> None:
        if inp.search_attributes:
            workflow.upsert_search_attributes([search.STATUS.value_set(status)])
