"""The reconciler: finishes work a crashed API or launcher left half-done. Every worker runs
it every few seconds; each piece is idempotent, so running it anywhere (and twice) is safe:
- stored trigger events not yet acted on → enroll them;
- enrollments written but whose workflow was never confirmed started → start them;
- provider-reported failures whose cascade could not be told (Temporal was down) → tell it;
- erased customers' cascade executions Temporal could not delete at the time → delete them;
- experiments: winners to declare, bandit weights due (cascade/winner.py, allocation.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session
from temporalio.client import Client

from omnicascade.cascade.allocation import update_all
from omnicascade.cascade.cascade_input import cascade_input
from omnicascade.cascade.erase import retry_deletions
from omnicascade.cascade.events import process_event
from omnicascade.cascade.feedback import signal_failed_steps, unsignalled_failures
from omnicascade.cascade.temporal import start_cascades
from omnicascade.cascade.winner import decide_all
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.db.models import Enrollment, InboundEvent, Run
from omnicascade.db.session import read_scope, session_scope
from omnicascade.telemetry import RECONCILER, RECONCILER_BACKLOG
from omnicascade.vocabulary import EnrollmentStatus
from omnicascade.workflows.types import CascadeInput

log = logging.getLogger(__name__)


def stale_work(settings: Settings, older_than_s: float, *, session: Session
               ) -> tuple[list[str], list[CascadeInput]]:
    """Events not yet processed and enrollments not yet started, left by a process that died."""
    cutoff = now_utc() - timedelta(seconds=older_than_s)
    events = list(session.scalars(select(InboundEvent.event_id).where(
        InboundEvent.processed_at.is_(None), InboundEvent.received_at < cutoff).limit(1000)))
    pending = session.execute(select(Enrollment, Run).join(Run, Run.id == Enrollment.run_id)
                              .where(Enrollment.status == EnrollmentStatus.PENDING,
                                     Enrollment.enrolled_at < cutoff).limit(5000))
    return events, [cascade_input(run, e, settings) for e, run in pending]


# pg_try_advisory_xact_lock key of the experiments pass ("omnicascade experiments")
EXPERIMENTS_LOCK = 0x6F6D6E6965787000
EXPERIMENTS_EVERY_S = 60.0  # a look costs a count per run; the windows close in hours
_last_look = [float("-inf")]


def decide_experiments(settings: Settings) -> int:
    """Winners to declare and bandit weights due (cascade/winner.py, allocation.py). One
    pass at a time across workers (a PostgreSQL advisory lock; SQLite's writers are serial),
    so two workers never both store a decision or an update."""
    with session_scope(settings.db_url) as session:
        if session.get_bind().dialect.name == "postgresql" and not session.scalar(
                text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": EXPERIMENTS_LOCK}):
            return 0
        return decide_all(session=session) + update_all(session=session)


def _experiments_due(every_s: float = EXPERIMENTS_EVERY_S) -> bool:
    now = time.monotonic()
    if now - _last_look[0] < every_s:
        return False
    _last_look[0] = now
    return True


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
    deleted = await retry_deletions(client, settings)
    decided = 0
    if _experiments_due():
        try:  # a failing look must not hold up the rest of the reconciler
            decided = await asyncio.to_thread(decide_experiments, settings)
        except Exception:
            log.exception("reconciler: the experiments pass failed; the next one retries")
    RECONCILER_BACKLOG.set(len(events) + len(inputs) + len(failures))
    for action, n in (("event_processed", len(events)), ("cascade_started", started),
                      ("failure_told", told), ("execution_deleted", deleted),
                      ("experiment_decided", decided)):
        if n:
            RECONCILER.labels(action).inc(n)
    if deleted:
        log.info("reconciler: deleted %d erased customers' cascades from Temporal", deleted)
    if events or started or failures:
        log.info("reconciler: processed %d stale events, started %d pending cascades, "
                 "told %d of %d cascades about a failed step", len(events), started, told,
                 len(failures))
    return len(events) + started + len(failures) + deleted


async def reconcile_forever(client: Client, settings: Settings, every_s: float = 15.0) -> None:
    while True:
        try:
            await reconcile_once(client, settings)
        except Exception:  # keep reconciling; the next pass retries
            log.exception("reconciler pass failed")
        await asyncio.sleep(every_s)
