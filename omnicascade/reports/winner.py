"""The experiment's decision as the reports, `runs show`, `runs winner` and the console show
it: the stored winner (cascade/winner.py) with its time, metric, effect, interval and sample
sizes, and for a bandit the weights over time and the regret it saved. A decision made in a
rehearsal says so everywhere it is shown."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omnicascade.clock import clock_of
from omnicascade.db.experiment_models import (
    AllocationUpdate,
    ExperimentDecision,
    history,
    standing,
)
from omnicascade.db.models import Enrollment, Run
from omnicascade.errors import NotFound
from omnicascade.experiments import regret_saved
from omnicascade.reports.format import iso
from omnicascade.vocabulary import HOLDOUT

BANDIT_NOTE = ("bandit arms are not a fair A/B comparison: each variant's share of entrants "
               "moved over time (and with it who entered when), so compare them with care; "
               "regret_saved estimates the conversions gained against a fixed equal split")


def decision_view(row: ExperimentDecision, run: Run) -> dict[str, Any]:
    clock = clock_of(run)
    return {"kind": row.kind, "winner": row.winner, "by": row.by,
            "decided_at": iso(clock.campaign(row.decided_at)),
            "decided_at_wall": iso(row.decided_at), "metric": row.metric,
            "effect": row.effect,
            "interval": {"low": row.ci_low, "high": row.ci_high}
            if row.ci_low is not None or row.ci_high is not None else None,
            "p_value": row.p_value, "sample_sizes": row.sample_sizes,
            "rehearsal": bool(row.rehearsal),
            "rehearsal_label": clock.label if row.rehearsal else None, "note": row.note}


def _run(run_id: str, session: Session) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}; `omnicascade runs list` shows the runs")
    return run


def enrolled_between(run_id: str, start: datetime, end: datetime | None, *,
                     session: Session) -> int:
    """Entrants (holdout aside) while one set of weights held: the regret estimate's base."""
    q = select(func.count()).select_from(Enrollment).where(
        Enrollment.run_id == run_id, Enrollment.enrolled_at >= start,
        Enrollment.variant != HOLDOUT)
    if end is not None:
        q = q.where(Enrollment.enrolled_at < end)
    return int(session.scalar(q) or 0)


def _experiment(run: Run) -> dict[str, Any] | None:
    """The launched spec's `experiment` block (the snapshot, as every report reads it)."""
    return (run.snapshot.get("spec") or {}).get("experiment") or None


def allocation_history(run: Run, *, session: Session) -> list[dict[str, Any]]:
    rows = list(session.scalars(select(AllocationUpdate).where(
        AllocationUpdate.run_id == run.id).order_by(AllocationUpdate.id)))
    clock = clock_of(run)
    out = []
    for i, row in enumerate(rows):
        end = rows[i + 1].at if i + 1 < len(rows) else None
        out.append({"number": row.number, "at": iso(clock.campaign(row.at)),
                    "weights": row.weights, "counts": row.counts,
                    "entrants": enrolled_between(run.id, row.at, end, session=session)})
    return out


def experiment_view(run_id: str, *, session: Session) -> dict[str, Any] | None:
    """`experiment.winner` and friends for `runs show` and `report`; None without an
    experiment that decides or allocates."""
    run = _run(run_id, session)
    experiment = _experiment(run)
    rows = history(run.id, session=session)
    allocation = (experiment or {}).get("allocation") or "fixed"
    if experiment is None or (not experiment.get("winner") and allocation == "fixed"
                              and not rows):
        return None
    current = standing(rows)
    out: dict[str, Any] = {
        "winner": decision_view(current, run) if current else None,
        "decisions": [decision_view(r, run) for r in rows],
        "allocation": allocation}
    if allocation == "bandit":
        hist = allocation_history(run, session=session)
        out["allocation_history"] = hist
        out["bandit_note"] = BANDIT_NOTE
        last = hist[-1]["counts"] if hist else None
        out["regret_saved"] = round(regret_saved(
            [(h["weights"], h["entrants"]) for h in hist],
            {a: (int(x), int(n)) for a, (x, n) in last.items()}), 2) if last else None
    return out


def winner_answer(run_id: str, evidence: dict[str, Any] | None, *,
                  session: Session) -> dict[str, Any]:
    """`runs winner RUN_ID`: the decision in force, or "no winner yet" with the evidence
    (`Decision.to_dict()` of cascade/winner.py's `evidence`, computed by the caller)."""
    run = _run(run_id, session)
    view = experiment_view(run_id, session=session) or {"winner": None, "decisions": []}
    return {"run_id": run.id, "campaign": run.campaign, **view,
            "rehearsal": clock_of(run).rehearsal, "evidence": evidence,
            "status": "decided" if view.get("winner") else "no winner yet"}


def winner_line(view: dict[str, Any] | None) -> str | None:
    """One sentence for the console and the terminal."""
    if not view:
        return None
    w = view.get("winner")
    if not w:
        return "no winner yet: the split continues as written"
    rehearsal = f" — REHEARSAL ({w['rehearsal_label']}), not a live result" \
        if w["rehearsal"] else ""
    if w["effect"] is None:
        return f"winner: {w['winner']} (declared {w['by']} at {w['decided_at']}){rehearsal}"
    scale, unit = (100, " pts") if w["metric"] == "conversion_rate" else (1, " per customer")
    interval = w["interval"] or {}
    low, high = (None if v is None else f"{v * scale:+.2f}"
                 for v in (interval.get("low"), interval.get("high")))
    return (f"winner: {w['winner']} on {w['metric'].replace('_', ' ')}, "
            f"{w['effect'] * scale:+.2f}{unit} (interval {low or '−∞'} to {high or '+∞'}), "
            f"decided {w['by']} at {w['decided_at']}, sample sizes {w['sample_sizes']}"
            f"{rehearsal}")


def with_experiment(rep: dict[str, Any], run_id: str, *, session: Session) -> dict[str, Any]:
    """The report's `experiment` key with the decision added (`experiment.winner`, …)."""
    view = experiment_view(run_id, session=session)
    if view is not None:
        view["summary"] = winner_line(view)  # the one sentence every view shows
        rep["experiment"] = {**(rep.get("experiment") or {}), **view}
    return rep
