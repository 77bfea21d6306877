"""The tables of experiments that decide (cascade/winner.py), kept beside models.py (the db
package imports this module, so Base.metadata always has them). Counts only: no customer."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from omnicascade.clock import now_utc
from omnicascade.db.models import Base


class ExperimentDecision(Base):
    """What happened to a run's experiment, newest last: `winner` (declared, by auto or
    manual), `reset` (the split reopened: a new experiment starts counting) or `expired`
    (max_duration passed without a winner; the split continues). The newest winner/reset
    row says who later entrants get."""
    __tablename__ = "experiment_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # winner | reset | expired
    decided_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)  # wall clock
    metric: Mapped[str | None] = mapped_column(String(32))
    winner: Mapped[str | None] = mapped_column(String(64))
    effect: Mapped[float | None] = mapped_column(Float)  # winner − control per customer
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    sample_sizes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # Decision.to_dict()
    rehearsal: Mapped[bool] = mapped_column(Boolean, default=False)
    by: Mapped[str] = mapped_column(String(16), default="auto")  # auto | manual
    note: Mapped[str | None] = mapped_column(Text)


class AllocationUpdate(Base):
    """A bandit's weights from `at` on (update `number` of the run); entrants are assigned
    by the newest row, so the history is exactly what customers got."""
    __tablename__ = "allocation_updates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)  # wall clock
    weights: Mapped[dict[str, Any]] = mapped_column(JSON)
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # arm → [conversions, closed]


def history(run_id: str, *, session: Session) -> list[ExperimentDecision]:
    """A run's experiment decisions, oldest first."""
    return list(session.scalars(select(ExperimentDecision).where(
        ExperimentDecision.run_id == run_id).order_by(ExperimentDecision.id)))


def standing(rows: Iterable[ExperimentDecision]) -> ExperimentDecision | None:
    """The decision in force: the newest winner, unless a reset came after it."""
    current = None
    for row in rows:
        if row.kind in ("winner", "reset"):
            current = row if row.kind == "winner" else None
    return current
