"""Runs for the CLI and API: the list, one run's live funnel (`runs show`), and the promise-1
check. Each returns plain dicts in the `--json` shapes of DESIGN §4. The funnel is the
report's own (funnel.py over data.py): `runs show` and `report` can never disagree — with
several variants, its steps are per variant, as in the report's `funnel.by_variant`."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omnicascade.clock import clock_of
from omnicascade.db.models import ConversionEvent, Delivery, Enrollment, Run
from omnicascade.errors import NotFound
from omnicascade.reports.data import RunData, load_run
from omnicascade.reports.format import iso
from omnicascade.reports.funnel import endings, funnel
from omnicascade.reports.unmatched import unmatched_conversions
from omnicascade.vocabulary import (
    DEFAULT_VARIANT,
    HOLDOUT,
    WENT_OUT,
    EnrollmentStatus,
    Phase,
    RunStatus,
)

# The `runs show --json` keys of a step, in this order (the report's rows have more).
# `label` names the step for people ("step 1", "after 1"); `variant` says whose step it is.
STEP_KEYS = ("index", "label", "variant", "channel", "sent", "skipped", "failed", "unknown",
             "deferred", "skipped_by_reason", "waiting", "held", "timed")


def rehearsal_of(run: Run) -> dict[str, Any] | None:
    """`{"scale", "label", "started_at"}` for a run launched with --time-scale N (its times
    read on the campaign clock, clock.py), None for a live run."""
    clock = clock_of(run)
    if not clock.rehearsal:
        return None
    scale = clock.scale
    return {"scale": int(scale) if scale.is_integer() else scale, "label": clock.label,
            "started_at": iso(run.created_at)}


def run_status(run: Run, counts: dict[str, int]) -> str:
    """The run's status as people should see it (vocabulary.RunStatus): an audience run
    whose cascades have all ended has completed, a draining one has stopped (control.py
    writes that the next time someone asks to change the run)."""
    live = counts.get(EnrollmentStatus.PENDING, 0) + counts.get(EnrollmentStatus.ACTIVE, 0)
    if run.status == RunStatus.RUNNING and not live:
        return RunStatus.COMPLETED.value
    if run.status == RunStatus.DRAINING and not live:
        return RunStatus.STOPPED.value
    return str(run.status)


def _status_counts(session: Session, run_ids: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for run_id, status, n in session.execute(
            select(Enrollment.run_id, Enrollment.status, func.count())
            .where(Enrollment.run_id.in_(run_ids)).group_by(Enrollment.run_id,
                                                            Enrollment.status)):
        out[run_id][status] = n
    return out


def _converted_counts(session: Session, run_ids: list[str]) -> dict[str, int]:
    return dict(session.execute(select(Enrollment.run_id, func.count())  # type: ignore[arg-type]
                                .where(Enrollment.run_id.in_(run_ids),
                                       Enrollment.converted_at.is_not(None),
                                       Enrollment.status != EnrollmentStatus.EXCLUDED)
                                .group_by(Enrollment.run_id)).all())


def runs_list(*, session: Session) -> list[dict[str, Any]]:
    runs = list(session.scalars(select(Run).order_by(Run.created_at.desc())))
    ids = [r.id for r in runs]
    counts, converted = _status_counts(session, ids), _converted_counts(session, ids)
    rows = []
    for run in runs:
        c = counts.get(run.id, {})
        enrolled = sum(n for s, n in c.items() if s != EnrollmentStatus.EXCLUDED)
        conv = converted.get(run.id, 0)
        rows.append({"run_id": run.id, "campaign": run.campaign, "version": run.version,
                     "status": run_status(run, c),
                     "created_at": iso(run.created_at), "enrolled": enrolled,
                     "excluded": c.get(EnrollmentStatus.EXCLUDED, 0),
                     "active": c.get(EnrollmentStatus.ACTIVE, 0)
                     + c.get(EnrollmentStatus.PENDING, 0), "converted": conv,
                     "conversion_rate": round(conv / enrolled, 4) if enrolled else 0.0,
                     "stopped": c.get(EnrollmentStatus.STOPPED, 0),
                     "exited": c.get(EnrollmentStatus.EXITED, 0),
                     "unmatched": unmatched_conversions(run, session=session),
                     "rehearsal": rehearsal_of(run)})
    return rows


def status_of(run_id: str, *, session: Session) -> str:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}; `omnicascade runs list` shows the runs")
    return run_status(run, _status_counts(session, [run_id]).get(run_id, {}))


def run_show(run_id: str, *, session: Session) -> dict[str, Any]:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}; `omnicascade runs list` shows the runs")
    data = load_run(run, session=session, settings=None)
    counts = Counter(m.status for m in data.members)
    rows = step_rows(data)
    variants: dict[str, dict[str, int]] = {}
    for m in data.members:
        v = variants.setdefault(m.variant, {"enrolled": 0, "converted": 0})
        v["enrolled"] += 1
        v["converted"] += m.converted
    return {"run_id": run.id, "campaign": run.campaign, "version": run.version,
            "status": run_status(run, counts),
            "created_at": iso(run.created_at), "trigger": run.trigger_event,
            "enrolled": len(data.members), "excluded": data.excluded,
            "active": counts[EnrollmentStatus.ACTIVE] + counts[EnrollmentStatus.PENDING],
            "converted": sum(m.converted for m in data.members),
            **endings((m.status, m.exit_reason) for m in data.members),
            "steps": [_step(r) for r in rows if r["phase"] == Phase.CASCADE],
            "after_conversion": [_step(r) for r in rows if r["phase"] == Phase.FOLLOW_UP],
            "variants": variants,
            "sent_after_conversion": sends_after_conversion(session=session, run_id=run.id),
            "unmatched": unmatched_conversions(run, session=session),
            "rehearsal": rehearsal_of(run)}


def step_rows(data: RunData) -> list[dict[str, Any]]:
    """The funnel rows of `runs show`: one per step and channel; with several variants, one
    per variant too (step 1 is email in one variant and SMS in another)."""
    treated = [n for n in data.variants() if n != HOLDOUT]
    if len(treated) <= 1:
        name = treated[0] if treated else DEFAULT_VARIANT
        return funnel(data.members, variant=name)
    return [r for n in treated for r in funnel(data.of(n), variant=n)]


def _step(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in STEP_KEYS}


def sends_after_conversion(*, session: Session, run_id: str | None = None) -> int:
    """Cascade messages handed to a provider after the customer's conversion was recorded,
    by the moment the provider was called (`sending_at`; rows older than that column by
    their creation). Promise 1 says this is always 0; the demo and the benchmark print it."""
    q = (select(func.count()).select_from(Delivery)
         .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
         .join(ConversionEvent, ConversionEvent.event_id == Enrollment.conversion_event_id)
         .where(Delivery.phase == Phase.CASCADE, Delivery.status.in_(WENT_OUT),
                func.coalesce(Delivery.sending_at, Delivery.created_at)
                > ConversionEvent.recorded_at))
    if run_id:
        q = q.where(Delivery.run_id == run_id)
    return int(session.scalar(q) or 0)
