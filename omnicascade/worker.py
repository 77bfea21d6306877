"""The worker: runs CustomerCascade workflows and their activities, and a small reconciler
that finishes work a crashed API or launcher left half-done (unprocessed events, enrollments
whose workflow was never started). Both are idempotent, so running it anywhere is safe."""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client
from temporalio.worker import Worker

from omnicascade.activities.deliver import DeliverActivities
from omnicascade.activities.record import RecordActivities
from omnicascade.channels.base import Channel
from omnicascade.channels.registry import build_channels
from omnicascade.config import Settings
from omnicascade.db.session import session_scope
from omnicascade.enroll import start_cascades
from omnicascade.events import process_event, stale_work
from omnicascade.workflows.cascade import CustomerCascade

log = logging.getLogger(__name__)


def build_worker(client: Client, settings: Settings,
                 channels: dict[str, Channel] | None = None) -> Worker:
    deliver = DeliverActivities(settings, channels or build_channels(settings))
    record = RecordActivities(settings)
    return Worker(client, task_queue=settings.task_queue, workflows=[CustomerCascade],
                  activities=[deliver.deliver_step, record.finish_enrollment],
                  max_concurrent_activities=64)


async def reconcile_once(client: Client, settings: Settings, older_than_s: float = 30.0) -> int:
    def find():  # noqa: ANN202
        with session_scope(settings.db_url) as session:
            return stale_work(settings, older_than_s, session=session)
    events, inputs = await asyncio.to_thread(find)
    for event_id in events:
        await process_event(client, settings, event_id)

    started = await start_cascades(client, settings, inputs)
    if events or started:
        log.info("reconciler: processed %d stale events, started %d pending cascades",
                 len(events), started)
    return len(events) + started


async def reconcile_forever(client: Client, settings: Settings, every_s: float = 15.0) -> None:
    while True:
        try:
            await reconcile_once(client, settings)
        except Exception:  # noqa: BLE001 — keep reconciling; the next pass retries
            log.exception("reconciler pass failed")
        await asyncio.sleep(every_s)


async def run_worker(client: Client, settings: Settings, stop: asyncio.Event) -> None:
    worker = build_worker(client, settings)
    reconciler = asyncio.create_task(reconcile_forever(client, settings))
    async with worker:
        await stop.wait()
    reconciler.cancel()
