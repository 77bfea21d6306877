"""CustomerCascade: walk one customer through the campaign's channels until they convert.

For each step: deliver, then wait up to `wait` for a conversion. A step that could not
reach the customer (no address, unsubscribed, permanent failure) moves on at once. The
`conversion` signal stops the loop immediately, even mid-wait; the deliver activity
re-checks the database before every send, so a lost signal never leaks a message.

Run control (behind `workflow.patched(PATCH_RUN_CONTROL)`, so cascades started before it
replay exactly as they ran): `stop` ends the cascade at once — mid-wait, mid-deferral,
follow-ups included — and records it stopped or exited; a send already in flight completes,
nothing starts after. `pause` holds sends (waits keep running; a conversion or a stop still
ends the cascade); `resume` attempts the held step at once, re-checked by the activity. The
signals only make this prompt: the activity reads the run's status before every send, and a
send it holds (a deferral with reason `paused`) is held here the same way. A step planned
with a task queue (a rate-limited channel, behind `PATCH_SEND_QUEUES`) sends on that queue.
A conversion or a stop while Temporal is backing off between a send's attempts ends the
cascade at once (workflows/sending.py, behind `PATCH_SEND_INTERRUPTS`). A step the cap
skipped keeps the cascade's spacing (workflows/spacing.py, behind `PATCH_CAP_SPACING`).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from omnicascade.vocabulary import DeliveryStatus, EnrollmentStatus, Phase, SkipReason
    from omnicascade.workflows import search, sending, spacing
    from omnicascade.workflows.types import (
        ACTIVITY_FINISH,
        PATCH_RUN_CONTROL,
        QUERY_PROGRESS,
        SIGNAL_CONVERSION,
        SIGNAL_PAUSE,
        SIGNAL_RESUME,
        SIGNAL_STEP_FAILED,
        SIGNAL_STOP,
        WORKFLOW,
        CascadeInput,
        ConversionSignal,
        DeliverResult,
        FinishInput,
        Progress,
        Stage,
        StepPlan,
        StopSignal,
        TimelineEntry,
    )

GAVE_UP = "gave up after retries"


@workflow.defn(name=WORKFLOW)
class CustomerCascade:
    def __init__(self) -> None:
        self._converted = False
        self._conversion_event_id: str | None = None
        self._state = "starting"
        self._stage: tuple[Stage, str | None] = (Stage.STARTING, None)
        self._timeline: list[TimelineEntry] = []
        self._failed_steps: set[str] = set()
        self._controls = False  # workflow.patched(PATCH_RUN_CONTROL), the first thing run() does
        self._stop: StopSignal | None = None
        self._stop_first = False  # the stop came before any conversion: it decides the outcome
        self._paused = False
        self._told = 0  # pause/resume signals so far: newer than an attempt's answer?
        self._holds = 0  # the activity's "paused" answers in a row: each recheck waits longer

    @workflow.signal(name=SIGNAL_CONVERSION)
    def conversion(self, signal: ConversionSignal) -> None:
        if not self._converted:
            self._converted = True
            self._conversion_event_id = signal.event_id

    @workflow.signal(name=SIGNAL_STEP_FAILED)
    def step_failed(self, step_key: str) -> None:
        """A permanent failure after the provider accepted it (a bounce): move on at once."""
        self._failed_steps.add(step_key)

    @workflow.signal(name=SIGNAL_STOP)
    def stop(self, signal: StopSignal) -> None:
        """End now: the run was stopped, the version replaced, or an exit event came."""
        if self._stop is None:
            self._stop, self._stop_first = signal, not self._converted

    @workflow.signal(name=SIGNAL_PAUSE)
    def pause(self) -> None:
        self._paused, self._told = True, self._told + 1

    @workflow.signal(name=SIGNAL_RESUME)
    def resume(self) -> None:
        self._paused, self._told = False, self._told + 1

    @workflow.query(name=QUERY_PROGRESS)
    def progress(self) -> Progress:
        return Progress(self._state, self._converted, self._conversion_event_id,
                        list(self._timeline), *self._stage)

    @workflow.run
    async def run(self, inp: CascadeInput) -> str:
        # First, always at the same point: a cascade started before run control replays
        # without the marker and keeps its old behaviour (its sends still stop and hold at
        # the send-time guard); every new one records the marker and honours the signals.
        self._controls = workflow.patched(PATCH_RUN_CONTROL)
        # OmnicascadeStatus=active was set when the workflow was started; no upsert needed.
        if inp.holdout:
            return await self._holdout(inp)
        recorded = False
        for n, step in enumerate(inp.steps):
            if self._converted or self._stopped():
                break
            self._at(Stage.SENDING, step.key, f"sending step {step.key} ({step.channel})")
            last = n == len(inp.steps) - 1 and step.wait_s == 0
            due = workflow.now()
            result = await self._deliver(inp, step, completes=last)
            recorded = last and result.status != DeliveryStatus.DEFERRED and not result.gave_up
            if result.status == DeliveryStatus.SKIPPED and result.reason == SkipReason.CONVERTED:
                self._converted = True  # the send-time guard saw a conversion we were not told of
                break
            if self._guard_stopped(result):
                break
            wait = spacing.wait_after(step, result, due, self._scaled(inp, step.wait_s))
            if wait is not None and not self._converted and not self._stopped():
                self._at(Stage.WAITING, step.key,
                         f"waiting after step {step.key} ({step.channel})")
                key = step.key

                def stop_waiting(key: str = key) -> bool:
                    return self._converted or key in self._failed_steps or self._stopped()

                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(stop_waiting, timeout=wait)

        if self._stopped() and self._stop_first:
            return await self._end_stopped(inp)
        outcome = EnrollmentStatus.CONVERTED if self._converted else EnrollmentStatus.COMPLETED
        if self._converted:
            self._set_status(inp, EnrollmentStatus.CONVERTED)
            for follow_up in inp.follow_ups:  # a stop cancels the ones still due
                if follow_up.wait_s > 0 and not self._stopped():
                    self._at(Stage.FOLLOW_UP_DUE, follow_up.key,
                             f"follow-up {follow_up.key} due in {follow_up.wait_s}s")
                    await self._sleep(self._scaled(inp, follow_up.wait_s))
                if self._stopped():
                    break
                self._at(Stage.SENDING, follow_up.key,
                         f"sending follow-up {follow_up.key} ({follow_up.channel})")
                if self._guard_stopped(await self._deliver(inp, follow_up)):
                    break
        if outcome == EnrollmentStatus.COMPLETED and recorded:
            # the last step's activity already wrote "completed" to the database
            self._at(Stage.ENDED, None, outcome)
            self._set_status(inp, outcome)
            return outcome
        return await self._finish(inp, outcome)

    async def _end_stopped(self, inp: CascadeInput) -> str:
        assert self._stop is not None
        return await self._finish(inp, self._stop.status, self._stop.reason)

    async def _finish(self, inp: CascadeInput, outcome: str, reason: str | None = None) -> str:
        self._at(Stage.ENDED, None, outcome)
        await workflow.execute_activity(
            ACTIVITY_FINISH, FinishInput(inp.enrollment_id, outcome,
                                         self._conversion_event_id if reason is None
                                         else reason),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1),
                                     maximum_interval=timedelta(minutes=1)))
        self._set_status(inp, outcome)
        return outcome

    async def _holdout(self, inp: CascadeInput) -> str:
        """The baseline: no messages at all, but the same window to convert in, so its
        conversion rate compares like for like with the variants."""
        self._at(Stage.HOLDOUT, None, "holdout: watching for a conversion, sending nothing")
        window = sum(s.wait_s for s in inp.steps)
        if window > 0 and not self._converted and not self._stopped():
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._converted or self._stopped(),
                                              timeout=self._scaled(inp, window))
        if self._stopped() and self._stop_first:
            return await self._end_stopped(inp)
        return await self._finish(inp, EnrollmentStatus.CONVERTED if self._converted
                                  else EnrollmentStatus.COMPLETED)

    async def _deliver(self, inp: CascadeInput, step: StepPlan,
                       completes: bool = False) -> DeliverResult:
        """Deliver a step, honouring deferrals (a durable timer, cut short by a stop and,
        for cascade steps, a conversion) and holding it while the run is paused."""
        while True:
            if self._controls:
                await self._hold(inp, step)
                if self._ends(step):
                    return DeliverResult(f"{inp.enrollment_id}:{step.key}",
                                         DeliveryStatus.SKIPPED, SkipReason.STOPPED
                                         if self._stopped() else SkipReason.CONVERTED)
            told = self._told
            result = await self._attempt(inp, step, completes)
            held = result.status == DeliveryStatus.DEFERRED and \
                result.reason == SkipReason.PAUSED and self._controls
            if self._told == told:  # no newer word from a signal: the database has it right
                self._paused = held
            self._holds = self._holds + 1 if held else 0
            if held:
                continue
            if result.status != DeliveryStatus.DEFERRED or not result.defer_until:
                return result
            until = datetime.fromisoformat(result.defer_until)
            delay = max(until - workflow.now(), timedelta(seconds=1))
            self._at(Stage.DEFERRED, step.key, f"step {step.key} ({step.channel}) deferred "
                     f"({result.reason or 'quiet_hours'}) until {result.defer_until}")
            if step.phase == Phase.CASCADE:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(lambda: self._converted or self._stopped(),
                                                  timeout=delay)
                if self._converted:
                    return DeliverResult(result.delivery_id, DeliveryStatus.SKIPPED,
                                         SkipReason.CONVERTED)
            else:
                await self._sleep(delay)

    async def _hold(self, inp: CascadeInput, step: StepPlan) -> None:
        """While the run is paused start no send: wait for a resume, a stop or (cascade
        steps) a conversion, or until it is time to ask the activity again (the database is
        the truth). Each recheck doubles the next wait, up to pause_recheck_max_s."""
        if not self._paused or self._ends(step):
            return
        self._at(Stage.HELD, step.key, f"step {step.key} ({step.channel}) held: run paused")
        wait = min(inp.pause_recheck_s * 2 ** min(self._holds, 30),
                   max(inp.pause_recheck_max_s, inp.pause_recheck_s))
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: not self._paused or self._ends(step),
                                          timeout=timedelta(seconds=max(wait, 1)))

    def _at(self, stage: Stage, step: str | None, words: str) -> None:
        self._stage, self._state = (stage, step), words

    def _stopped(self) -> bool:
        return self._controls and self._stop is not None

    def _ends(self, step: StepPlan) -> bool:
        """Whether this step must not be sent: a stop; for cascade steps, a conversion."""
        return self._stopped() or (step.phase == Phase.CASCADE and self._converted)

    def _guard_stopped(self, result: DeliverResult) -> bool:
        """The send-time guard found the run stopped or the cascade ended (a stop we were
        not told of): take it as the stop signal."""
        if self._controls and result.status == DeliveryStatus.SKIPPED \
                and result.reason == SkipReason.STOPPED:
            self.stop(StopSignal(EnrollmentStatus.STOPPED, SkipReason.STOPPED))
        return self._stopped()

    async def _sleep(self, delay: timedelta) -> None:
        """A durable timer; with run control a stop cuts it short."""
        if not self._controls:
            await workflow.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(self._stopped, timeout=delay)

    async def _attempt(self, inp: CascadeInput, step: StepPlan,
                       completes: bool = False) -> DeliverResult:
        try:
            answer = await sending.deliver(inp, step, completes, lambda: self._ends(step))
            # None: a conversion or a stop ended the step while its send was being retried
            result = answer or DeliverResult(f"{inp.enrollment_id}:{step.key}",
                                             DeliveryStatus.SKIPPED, SkipReason.STOPPED
                                             if self._stopped() else SkipReason.CONVERTED)
        except ActivityError as err:
            # Retries exhausted on clearly-not-sent errors: record and move on, never stall.
            cause = getattr(err.cause, "message", None) or str(err.cause or err)
            result = DeliverResult(f"{inp.enrollment_id}:{step.key}", DeliveryStatus.FAILED,
                                   f"{GAVE_UP}: {cause}", gave_up=True)
            # for the operator (no PII: ids, step, channel, the last error); not on replay
            workflow.logger.warning("send gave up: run=%s enrollment=%s step=%s channel=%s "
                                    "reason=%s", inp.run_id, inp.enrollment_id, step.key,
                                    step.channel, str(cause)[:300])
        last = self._timeline[-1] if self._timeline else None
        if result.reason == SkipReason.PAUSED and last is not None and \
                (last.step, last.status, last.reason) == (step.key, result.status, result.reason):
            return result  # still held: the timeline already says so
        self._timeline.append(TimelineEntry(step.key, step.channel, result.status, result.reason,
                                            workflow.now().isoformat()))
        return result

    @staticmethod
    def _scaled(inp: CascadeInput, seconds: int) -> timedelta:
        """A campaign duration as a timer: clock.RunClock.wall_span's rule (÷ time_scale),
        written out because workflow code imports only the vocabulary (tests/test_clock.py)."""
        return timedelta(seconds=seconds / max(inp.time_scale, 1e-9))

    def _set_status(self, inp: CascadeInput, status: str) -> None:
        if inp.search_attributes:
            workflow.upsert_search_attributes([search.STATUS.value_set(status)])
