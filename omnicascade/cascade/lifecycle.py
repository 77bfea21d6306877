"""Every status change of a run and of an enrollment, in one place: two explicit state
machines.

An enrollment is written `pending` (or `excluded`, never started), becomes `active` once its
workflow is confirmed started, and ends `completed`, `converted`, `stopped` or `exited`.
While it is live it holds its entry (`active_entry`), so the database refuses a second live
cascade for the same (campaign, customer, key); ending it lets the entry go.

A run listens (trigger) or runs (audience); it can be paused and resumed, drained, stopped,
superseded by a newer version, and an audience run completes. Only the transitions in
`ALLOWED` / `RUN_ALLOWED` happen; anything else raises, because a status written out of
order is a bug that would show up as a wrong report or, worse, a message to a customer who
bought.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from omnicascade.clock import now_utc
from omnicascade.db.models import ConversionEvent, Delivery, Enrollment, Run
from omnicascade.telemetry import (
    CASCADES_ENDED,
    CONVERSION_TO_STOP,
    SENDS_AFTER_CONVERSION,
    bounded,
)
from omnicascade.vocabulary import (
    LIVE_ENROLLMENT,
    WENT_OUT,
    DeliveryStatus,
    EnrollmentStatus,
    Phase,
    RunStatus,
    SkipReason,
)

S = EnrollmentStatus
_ENDED = frozenset({S.COMPLETED, S.CONVERTED, S.STOPPED, S.EXITED, S.ERASED})
ALLOWED: dict[EnrollmentStatus, frozenset[EnrollmentStatus]] = {
    S.PENDING: frozenset({S.ACTIVE} | _ENDED),  # may finish before it is marked active
    S.ACTIVE: _ENDED,
    # the last step recorded "completed" while a conversion signal raced it: converted wins
    S.COMPLETED: frozenset({S.CONVERTED}),
    S.CONVERTED: frozenset(),
    S.STOPPED: frozenset(),
    S.EXITED: frozenset(),
    S.EXCLUDED: frozenset(),
    S.ERASED: frozenset(),  # final: nothing the workflow reports afterwards changes it
}

R = RunStatus
RUN_ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    R.LISTENING: frozenset({R.PAUSED, R.DRAINING, R.STOPPED, R.SUPERSEDED}),
    R.RUNNING: frozenset({R.PAUSED, R.DRAINING, R.STOPPED, R.COMPLETED}),
    R.PAUSED: frozenset({R.LISTENING, R.RUNNING, R.DRAINING, R.STOPPED, R.SUPERSEDED}),
    R.DRAINING: frozenset({R.STOPPED}),
    R.SUPERSEDED: frozenset({R.STOPPED}),
    R.COMPLETED: frozenset(),
    R.STOPPED: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


def check(old: str, new: str) -> None:
    if EnrollmentStatus(new) not in ALLOWED[EnrollmentStatus(old)]:
        raise IllegalTransition(f"enrollment status {old} → {new} is not allowed")


def entry_id(campaign: str, customer_id: str, key: str | None) -> str:
    """The entry a live cascade holds: (campaign slug, customer, trigger key value)."""
    return hashlib.sha256("\x1f".join((campaign, customer_id, key or "")).encode()).hexdigest()


def resumed_status(run: Run) -> RunStatus:
    """What a paused run goes back to: listening for a trigger campaign, else running."""
    return R.LISTENING if run.trigger_event else R.RUNNING


def can_move(run: Run, new: RunStatus) -> bool:
    return new in RUN_ALLOWED[RunStatus(run.status)]


def move_run(run: Run, new: RunStatus, *, superseded_by: str | None = None) -> None:
    """Change a run's status; an illegal transition raises IllegalTransition."""
    if not can_move(run, new):
        raise IllegalTransition(f"run {run.id} is {run.status}; it cannot become {new}")
    run.status = new
    run.status_changed_at = now_utc()
    if superseded_by:
        run.superseded_by = superseded_by


def end_live(*, session: Session, status: EnrollmentStatus, reason: str,
             run_id: str | None = None, enrollment_ids: Sequence[str] | None = None) -> int:
    """End live (pending/active) cascades — of a run, or these ones — as stopped or exited,
    in bulk; their entries are free from now on. Returns how many ended."""
    assert status in (S.STOPPED, S.EXITED, S.ERASED) and (run_id or enrollment_ids is not None)
    live = Enrollment.status.in_(LIVE_ENROLLMENT)
    where = [live] + ([Enrollment.run_id == run_id] if run_id else []) + \
        ([Enrollment.id.in_(enrollment_ids)] if enrollment_ids is not None else [])
    close_pending(select(Enrollment.id).where(*where), SkipReason.STOPPED, session=session)
    q = update(Enrollment).where(*where)
    result = session.execute(q.values(status=status, exit_reason=reason[:64],
                                      finished_at=now_utc(), active_entry=None))
    ended = int(result.rowcount or 0)  # type: ignore[attr-defined]
    CASCADES_ENDED.labels(status.value).inc(ended)
    return ended


# A send a cascade still has coming: deferred (quiet hours, the cap, the best send time, a
# paused run), or refused and waiting for its next attempt.
PENDING_SENDS = (DeliveryStatus.DEFERRED, DeliveryStatus.RETRYING)


def close_pending(enrollment_ids: Any, reason: str, *, session: Session,
                  phase: Phase | None = None) -> None:
    """The cascades ended (or, with `phase` cascade, converted): a send they still had
    pending will never go out, so it is recorded skipped, with why (`converted`; `stopped`
    for a stop, an exit, an erasure — what the workflow takes as a stop, should it ask
    again), and every view shows what really comes next. `enrollment_ids`: ids or a select
    of them. A send being handed over (`sending`) is left to finish as it will."""
    q = update(Delivery).where(Delivery.status.in_(PENDING_SENDS),
                               Delivery.enrollment_id.in_(enrollment_ids))
    if phase is not None:
        q = q.where(Delivery.phase == phase)
    session.execute(q.values(status=DeliveryStatus.SKIPPED, reason=reason[:64]),
                    execution_options={"synchronize_session": False})


def activate(enrollment_ids: Sequence[str], *, session: Session) -> None:
    """pending → active for cascades whose workflow is confirmed started (in bulk: a
    launch marks thousands at once; rows that moved on meanwhile are left alone)."""
    session.execute(update(Enrollment).where(Enrollment.id.in_(enrollment_ids),
                                             Enrollment.status == S.PENDING)
                    .values(status=S.ACTIVE, started_at=now_utc()))


def finish(enrollment_id: str, outcome: EnrollmentStatus, *, session: Session,
           conversion_event_id: str | None = None, exit_reason: str | None = None) -> bool:
    """Record how a cascade ended. Idempotent: an activity retry that finds the outcome
    already written changes nothing, nor does a cascade the database already ended another
    way (a stop ends it in the database before the workflow hears of it). Returns whether
    the row changed."""
    row = session.get(Enrollment, enrollment_id)
    if row is not None and outcome != S.COMPLETED:  # its workflow is over: nothing is due
        close_pending([enrollment_id], SkipReason.CONVERTED if outcome == S.CONVERTED
                      else SkipReason.STOPPED, session=session)
    if row is None or row.status == outcome:
        return False
    if row.finished_at is not None and outcome not in ALLOWED[EnrollmentStatus(row.status)]:
        return False  # already ended another way (e.g. converted before completing)
    check(row.status, outcome)
    row.status = outcome
    row.finished_at = now_utc()
    row.active_entry = None
    if outcome == S.CONVERTED:
        row.converted_at = row.converted_at or row.finished_at
        row.conversion_event_id = row.conversion_event_id or conversion_event_id
        _measure_conversion(row, session=session)
    elif outcome in (S.STOPPED, S.EXITED):
        row.exit_reason = (exit_reason or outcome.value)[:64]
    CASCADES_ENDED.labels(bounded(outcome.value)).inc()
    return True


def _measure_conversion(row: Enrollment, *, session: Session) -> None:
    """A cascade ends converted: how long after its conversion was recorded, and whether a
    message of it went to a provider after that (promise 1: never; the alert). Once per
    converted cascade, never per send."""
    recorded = session.scalar(select(ConversionEvent.recorded_at)
                              .where(ConversionEvent.event_id == row.conversion_event_id))
    if recorded is None or row.finished_at is None:
        return
    CONVERSION_TO_STOP.observe(max(0.0, (row.finished_at - recorded).total_seconds()))
    late = session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.enrollment_id == row.id, Delivery.phase == Phase.CASCADE,
        Delivery.status.in_(WENT_OUT),
        func.coalesce(Delivery.sending_at, Delivery.created_at) > recorded))
    if late:
        SENDS_AFTER_CONVERSION.inc(int(late))


def note_conversion(rows: Sequence[Enrollment], event_id: str, occurred: datetime) -> None:
    """A matching conversion was recorded: the rows keep their status (the workflow ends
    them), but the conversion that will end them is known from now on."""
    for row in rows:
        row.converted_at = occurred
        row.conversion_event_id = event_id
