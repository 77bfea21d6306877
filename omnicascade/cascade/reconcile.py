"""The reconciler: finishes work a crashed API or launcher left half-done. Every worker runs
it every few seconds; each piece is idempotent, so running it anywhere (and twice) is safe:
- stored trigger events not yet acted on → enroll them;
- enrollments written but whose workflow was never confirmed started → start them;
- provider-reported failures whose cascade could not be told (Temporal was down) → tell it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import Client

from omnicascade.cascade.events import process_event
from omnicascade.cascade.feedback import signal_failed_steps, unsignalled_failures
from omnicascade.cascade.plan import cascade_input
from omnicascade.cascade.temporal import start_cascades
from omnicascade.config import Settings
from omnicascade.db.models import Enrollment, InboundEvent, Run, utcnow
from omnicascade.db.session import read_scope
from omnicascade.vocabulary import EnrollmentStatus
from omnicascade.workflows.types import CascadeInput

log = logging.getLogger(__name__)


def stale_work(settings: Settings, older_than_s: float, *, session: Session
               ) -> tuple[list[str], list[CascadeInput]]:
    """Events not yet processed and enrollments not yet started, left by a process that died."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    events = list(session.scalars(select(InboundEvent.event_id).where(
        InboundEvent.processed_at.is_(None), InboundEvent.received_at < cutoff).limit(1000)))
    pending = session.execute(select(Enrollment, Run).join(Run, Run.id == Enrollment.run_id)
                              .where(Enrollment.status == EnrollmentStatus.PENDING,
                                     Enrollment.enrolled_at < cutoff).limit(5000))
    return events, [cascade_input(run, e, settings) for e, run in pending]


async def reconcile_once(client: Client, settings: Settings, older_than_s: float = 30.0) -> int:
    def find() -> tuple[list[str], list[CascadeInput], list[str]]:
        with read_scope(settings.db_url) as session:
            return (*stale_work(settings, older_than_s, session=session),
                    unsignalled_failures(older_than_s, session=session))
    events, inputs, failures = await asyncio.to_thread(find)
    for event_id in events:
        await process_event(client, settings, event_id)
    started = await start_cascades(client, settings, inputs)
    told = await signal_failed_steps(client, failures, settings.db_url)
    if events or started or failures:
        log.info("reconciler: processed %d stale events, started %d pending cascades, "
                 "told %d of %d cascades about a failed step", len(events), started, told,
                 len(failures))
    return len(events) + started + len(failures)


async def reconcile_forever(client: Client, settings: Settings, every_s: float = 15.0) -> None:
    while True:
        try:
            await reconcile_once(client, settings)
        except Exception:  # keep reconciling; the next pass retries
            log.exception("reconciler pass failed")
        await asyncio.sleep(every_s)
