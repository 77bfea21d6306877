"""The deliver activity as the cascade calls it: its retry policy, and (behind
`workflow.patched(PATCH_SEND_INTERRUPTS)`, so cascades recorded before replay as they ran)
a call that a conversion or a stop cuts short.

A refused attempt is retried by Temporal after a back-off (the provider's Retry-After,
capped at SEND_RETRY_MAX_S, the policy's own maximum interval). A cascade that only
awaited the activity could not end during that back-off: a converted customer's cascade,
or a stopped run's, stayed open until the retries ran out. Now the cascade cancels the
activity when `ends()` turns true and it has not answered within INTERRUPT_GRACE_S. The
cancellation waits for an attempt already running (WAIT_CANCELLATION_COMPLETED: a send
handed to the provider completes and is recorded, as before); an attempt that is only
scheduled — the back-off — is cancelled at once. The
activity's own database guard still refuses any send after a conversion or a stop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from omnicascade.vocabulary import SEND_RETRY_MAX_S
    from omnicascade.workflows.types import (
        ACTIVITY_DELIVER,
        PATCH_SEND_INTERRUPTS,
        PATCH_SEND_QUEUES,
        CascadeInput,
        DeliverInput,
        DeliverResult,
        StepPlan,
    )


INTERRUPT_GRACE_S = 5  # how long an attempt in flight may take to answer before the cancel


def retry_policy(inp: CascadeInput) -> RetryPolicy:
    return RetryPolicy(initial_interval=timedelta(seconds=inp.send_initial_retry_s),
                       backoff_coefficient=2.0,
                       maximum_interval=timedelta(seconds=SEND_RETRY_MAX_S),
                       maximum_attempts=inp.send_max_attempts)


async def deliver(inp: CascadeInput, step: StepPlan, completes: bool,
                  ends: Callable[[], bool]) -> DeliverResult | None:
    """The step's deliver activity; None when `ends()` came true first and the activity
    was cancelled before it answered. Raises ActivityError when its retries ran out."""
    # A rate-limited channel's own queue (only steps planned with one ask for the patch)
    queue = step.task_queue if step.task_queue and workflow.patched(PATCH_SEND_QUEUES) \
        else None
    arg = DeliverInput(inp.enrollment_id, step, completes)
    timeout = timedelta(seconds=inp.send_timeout_s)
    if not workflow.patched(PATCH_SEND_INTERRUPTS):
        return await workflow.execute_activity(
            ACTIVITY_DELIVER, arg, result_type=DeliverResult, task_queue=queue,
            start_to_close_timeout=timeout, retry_policy=retry_policy(inp))
    handle = workflow.start_activity(
        ACTIVITY_DELIVER, arg, result_type=DeliverResult, task_queue=queue,
        start_to_close_timeout=timeout, retry_policy=retry_policy(inp),
        cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
    await workflow.wait_condition(lambda: handle.done() or ends())
    if not handle.done():
        # An attempt in flight answers within moments: let it, and cancel only an activity
        # still silent after that — one waiting out its back-off. (Asking to cancel an
        # activity that is completing at that very moment is a race some servers refuse.)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(handle.done, timeout=timedelta(seconds=INTERRUPT_GRACE_S))
    if handle.done():
        return await handle
    handle.cancel()
    try:
        return await handle  # the attempt in flight answered after all: its answer counts
    except (ActivityError, CancelledError, asyncio.CancelledError) as err:
        if isinstance(err, ActivityError) and not isinstance(err.cause, CancelledError):
            raise
        return None
