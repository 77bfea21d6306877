"""The worker: runs CustomerCascade workflows and their activities, and a small reconciler
that finishes work a crashed API or launcher left half-done (unprocessed events, enrollments
whose workflow was never started). Both are idempotent, so running it anywhere is safe."""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from omnicascade.activities.deliver import DeliverActivities
from omnicascade.activities.record import RecordActivities
from omnicascade.cascade.reconcile import reconcile_forever
from omnicascade.channels.base import Channel
from omnicascade.channels.registry import build_channels
from omnicascade.config import Settings
from omnicascade.runtime.gc_watch import freeze_startup_heap, watch_gc_pauses
from omnicascade.workflows.cascade import CustomerCascade

log = logging.getLogger(__name__)


# The workflow package is pure (no I/O, no module state). Passing it through the sandbox
# stops Temporal re-importing it for every cascade the worker loads: ≈ a fifth of the
# worker's CPU while a launch starts cascades, and a third less memory per cached cascade.
# The price: names a passed-through module imported (`datetime.now`, `random`) are the real
# ones, so the sandbox no longer refuses them there. The test suite therefore runs every
# cascade under the strict sandbox (worker_strict_sandbox), where such a call fails.
FAST_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("omnicascade.workflows"))
STRICT_RUNNER = SandboxedWorkflowRunner()


def build_worker(client: Client, settings: Settings,
                 channels: dict[str, Channel] | None = None) -> Worker:
    deliver = DeliverActivities(settings, channels or build_channels(settings))
    record = RecordActivities(settings)
    return Worker(client, task_queue=settings.task_queue, workflows=[CustomerCascade],
                  activities=[deliver.deliver_step, record.finish_enrollment],
                  workflow_runner=STRICT_RUNNER if settings.worker_strict_sandbox
                  else FAST_RUNNER,
                  max_concurrent_activities=settings.worker_max_concurrent_activities,
                  max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
                  max_cached_workflows=settings.worker_max_cached_workflows)


async def run_worker(client: Client, settings: Settings, stop: asyncio.Event) -> None:
    worker = build_worker(client, settings)
    watch_gc_pauses()
    log.debug("worker: %d startup objects kept out of garbage collections",
              freeze_startup_heap())
    reconciler = asyncio.create_task(reconcile_forever(client, settings))
    async with worker:
        await stop.wait()
    reconciler.cancel()
