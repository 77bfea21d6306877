"""Every status change of an enrollment, in one place: an explicit state machine.

An enrollment is written `pending` (or `excluded`, never started), becomes `active` once its
workflow is confirmed started, and ends `completed` or `converted`. Only the transitions in
`ALLOWED` happen; anything else raises, because a status written out of order is a bug
that would show up as a wrong report or, worse, a message to a customer who bought.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from omnicascade.db.models import Enrollment, utcnow
from omnicascade.vocabulary import EnrollmentStatus

S = EnrollmentStatus
ALLOWED: dict[EnrollmentStatus, frozenset[EnrollmentStatus]] = {
    S.PENDING: frozenset({S.ACTIVE, S.COMPLETED, S.CONVERTED}),  # may finish before marked
    S.ACTIVE: frozenset({S.COMPLETED, S.CONVERTED}),
    # the last step recorded "completed" while a conversion signal raced it: converted wins
    S.COMPLETED: frozenset({S.CONVERTED}),
    S.CONVERTED: frozenset(),
    S.EXCLUDED: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


def check(old: str, new: str) -> None:
    if EnrollmentStatus(new) not in ALLOWED[EnrollmentStatus(old)]:
        raise IllegalTransition(f"enrollment status {old} → {new} is not allowed")


def activate(enrollment_ids: Sequence[str], *, session: Session) -> None:
    """pending → active for cascades whose workflow is confirmed started (in bulk: a
    launch marks thousands at once; rows that moved on meanwhile are left alone)."""
    session.execute(update(Enrollment).where(Enrollment.id.in_(enrollment_ids),
                                             Enrollment.status == S.PENDING)
                    .values(status=S.ACTIVE, started_at=utcnow()))


def finish(enrollment_id: str, outcome: EnrollmentStatus, *, session: Session,
           conversion_event_id: str | None = None) -> bool:
    """Record how a cascade ended. Idempotent: an activity retry that finds the outcome
    already written changes nothing. Returns whether the row changed."""
    row = session.get(Enrollment, enrollment_id)
    if row is None or row.status == outcome:
        return False
    if row.finished_at is not None and outcome not in ALLOWED[EnrollmentStatus(row.status)]:
        return False  # already ended another way (e.g. converted before completing)
    check(row.status, outcome)
    row.status = outcome
    row.finished_at = utcnow()
    if outcome == S.CONVERTED:
        row.converted_at = row.converted_at or row.finished_at
        row.conversion_event_id = row.conversion_event_id or conversion_event_id
    return True


def note_conversion(rows: Sequence[Enrollment], event_id: str, occurred: datetime) -> None:
    """A matching conversion was recorded: the rows keep their status (the workflow ends
    them), but the conversion that will end them is known from now on."""
    for row in rows:
        row.converted_at = occurred
        row.conversion_event_id = event_id
