"""Conversions nobody could be matched to: stored for a customer id that no one knows
(`conversions.matched` is false). A run counts the ones that could have been its own —
of one of its conversion event types, occurring while the run has existed — so a shop
whose ids do not line up with the imported customers sees it in `runs list` and the
report instead of conversions vanishing silently."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session

from omnicascade.clock import now_utc
from omnicascade.db.models import ConversionEvent, Run


def conversion_events(snapshot: dict[str, Any] | None) -> list[str]:
    """The conversion event types of a run's campaign, from its snapshot (runs.snapshot)."""
    spec: dict[str, Any] = (snapshot or {}).get("spec") or {}
    return [str(e) for e in ((spec.get("conversion") or {}).get("events") or [])]


def unmatched_conversions(run: Run, *, session: Session, now: datetime | None = None) -> int:
    """How many unmatched conversions of the run's types occurred from the run's launch
    (runs.created_at) to `now` (default: the current time)."""
    events = conversion_events(run.snapshot)
    if not events:
        return 0
    q = (select(func.count()).select_from(ConversionEvent)
         .where(ConversionEvent.matched.is_(False), ConversionEvent.type.in_(events),
                ConversionEvent.occurred_at >= run.created_at,
                ConversionEvent.occurred_at <= (now or now_utc())))
    return int(session.scalar(q) or 0)


def unmatched_by_run(runs: list[Run], *, session: Session,
                     now: datetime | None = None) -> dict[str, int]:
    """`unmatched_conversions` of many runs (a page of `runs list`) in one statement per
    100 runs instead of one per run: the same count, each run's its own subquery."""
    until = now or now_utc()
    counts = {run.id: 0 for run in runs}
    parts = []
    for run in runs:
        events = conversion_events(run.snapshot)
        if events:
            parts.append(select(literal(run.id).label("run_id"), select(func.count())
                                .select_from(ConversionEvent)
                                .where(ConversionEvent.matched.is_(False),
                                       ConversionEvent.type.in_(events),
                                       ConversionEvent.occurred_at >= run.created_at,
                                       ConversionEvent.occurred_at <= until)
                                .scalar_subquery().label("n")))
    for at in range(0, len(parts), 100):  # SQLite allows 500 terms in a compound select
        chunk = parts[at:at + 100]
        q = union_all(*chunk) if len(chunk) > 1 else chunk[0]
        counts.update({run_id: int(n or 0) for run_id, n in session.execute(q)})
    return counts
