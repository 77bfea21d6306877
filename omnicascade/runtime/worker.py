"""The worker: runs CustomerCascade workflows and their activities, and a small reconciler
that finishes work a crashed API or launcher left half-done (unprocessed events, enrollments
whose workflow was never started). Both are idempotent, so running it anywhere is safe."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from omnicascade.activities.deliver import DeliverActivities
from omnicascade.activities.record import RecordActivities
from omnicascade.cascade.reconcile import reconcile_forever
from omnicascade.cascade.retention import start_pruning
from omnicascade.channels.base import Channel
from omnicascade.channels.queues import send_queues
from omnicascade.channels.registry import build_channels
from omnicascade.config import Settings
from omnicascade.runtime.gc_watch import freeze_startup_heap, watch_gc_pauses
from omnicascade.telemetry import WORKER_UP
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
                 channels: dict[str, Channel] | None = None,
                 deliver: DeliverActivities | None = None) -> Worker:
    """The cascade worker: workflows, and the sends of every channel without a queue of
    its own (it registers deliver_step either way)."""
    deliver = deliver or DeliverActivities(settings, channels or build_channels(settings))
    record = RecordActivities(settings)
    return Worker(client, task_queue=settings.task_queue, workflows=[CustomerCascade],
                  activities=[deliver.deliver_step, record.finish_enrollment],
                  workflow_runner=STRICT_RUNNER if settings.worker_strict_sandbox
                  else FAST_RUNNER,
                  max_concurrent_activities=settings.worker_max_concurrent_activities,
                  max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
                  max_cached_workflows=settings.worker_max_cached_workflows)


def build_workers(client: Client, settings: Settings,
                  channels: dict[str, Channel] | None = None) -> list[Worker]:
    """The cascade worker, plus one per rate-limited channel (channels/queues.py) polling
    that channel's send queue. The queue's dispatch rate is set server-side by every poller
    alike, so the provider's limit holds for any number of worker processes."""
    deliver = DeliverActivities(settings, channels or build_channels(settings))
    sends = [Worker(client, task_queue=queue, activities=[deliver.deliver_step],
                    max_task_queue_activities_per_second=rate,
                    max_concurrent_activities=settings.worker_max_concurrent_activities)
             for queue, rate in send_queues(settings).values()]
    return [build_worker(client, settings, deliver=deliver), *sends]


async def run_worker(client: Client, settings: Settings, stop: asyncio.Event,
                     channels: dict[str, Channel] | None = None) -> None:
    workers = build_workers(client, settings, channels)
    watch_gc_pauses()
    log.debug("worker: %d startup objects kept out of garbage collections",
              freeze_startup_heap())
    pruner = start_pruning(settings)  # OMNICASCADE_RETENTION, every hour (cascade/retention)
    reconciler = asyncio.create_task(reconcile_forever(client, settings))
    try:
        async with contextlib.AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            WORKER_UP.set(1)  # its readiness, for Prometheus (docs/operations.md)
            await stop.wait()
            WORKER_UP.set(0)
    finally:
        WORKER_UP.set(0)
        reconciler.cancel()
        if pruner is not None:
            pruner.cancel()
