"""Runs for the CLI and API: the list, one run's live funnel (`runs show`), and the promise-1
check. Each returns plain dicts in the `--json` shapes of docs/architecture.md §4. The
funnel is the report's own (funnel.py over data.py): `runs show` and `report` can never
disagree — with several variants, its steps are per variant, as in the report's
`funnel.by_variant`."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omnicascade.clock import clock_of
from omnicascade.db.models import ConversionEvent, Delivery, Enrollment, Run
from omnicascade.db.query import rows_in
from omnicascade.errors import NotFound
from omnicascade.reports.data import RunData, load_run
from omnicascade.reports.format import iso
from omnicascade.reports.funnel import funnel, tally
from omnicascade.reports.paging import MAX_LIMIT, RECENT_CONVERSIONS, Page, check_limit, cut, keyset
from omnicascade.reports.unmatched import unmatched_by_run, unmatched_conversions
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
             "deferred", "skipped_by_reason", "waiting", "held", "timed",
             "capped")
ENDING_KEYS = ("stopped", "exited", "stopped_by_reason", "exited_by_reason")


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


def _groups(session: Session, run_ids: list[str]) -> dict[str, list[Any]]:
    """Each run's enrollments as `(status, exit_reason, converted, n)` groups: what
    funnel.tally counts, fetched for a whole page of runs in one statement."""
    out: dict[str, list[Any]] = defaultdict(list)
    converted = Enrollment.converted_at.is_not(None)
    for run_id, status, reason, conv, n in rows_in(session, lambda ids: (
            select(Enrollment.run_id, Enrollment.status, Enrollment.exit_reason, converted,
                   func.count()).where(Enrollment.run_id.in_(ids))
            .group_by(Enrollment.run_id, Enrollment.status, Enrollment.exit_reason,
                      converted)), run_ids):
        out[run_id].append((status, reason, bool(conv), n))
    return out


def _status_counts(session: Session, run_ids: list[str]) -> dict[str, dict[str, int]]:
    return {r: tally(g)["status_counts"] for r, g in _groups(session, run_ids).items()}


def runs_page(*, session: Session, limit: int | None = None,
              cursor: str | None = None) -> Page:
    """`runs list`, newest first, a page at a time (paging.py)."""
    limit = check_limit(limit)
    q = keyset(select(Run), "runs", cursor, Run.created_at, Run.id, newest_first=True)
    runs, after = cut(list(session.scalars(q.limit(limit + 1))), limit, "runs",
                      lambda r: (r.created_at, r.id))
    return Page(list_rows(runs, session=session), after)


def runs_list(*, session: Session, campaign: str | None = None) -> list[dict[str, Any]]:
    """Every run (of one campaign), newest first: what `campaign list` and a campaign's
    versions add up. People page through `runs_page`."""
    q = select(Run).order_by(Run.created_at.desc(), Run.id.desc())
    if campaign is not None:
        q = q.where(Run.campaign == campaign)
    return list_rows(list(session.scalars(q)), session=session)


def list_rows(runs: list[Run], *, session: Session) -> list[dict[str, Any]]:
    """The `runs list --json` rows of `runs`: a constant number of statements, however
    many runs — the counts are funnel.tally's, as in `runs show`."""
    ids = [r.id for r in runs]
    groups, unmatched = _groups(session, ids), unmatched_by_run(runs, session=session)
    rows = []
    for run in runs:
        t = tally(groups.get(run.id, []))
        enrolled, conv = t["enrolled"], t["converted"]
        rows.append({"run_id": run.id, "campaign": run.campaign, "version": run.version,
                     "status": run_status(run, t["status_counts"]),
                     "created_at": iso(run.created_at), "enrolled": enrolled,
                     "excluded": t["excluded"], "active": t["active"], "converted": conv,
                     "conversion_rate": round(conv / enrolled, 4) if enrolled else 0.0,
                     "stopped": t["stopped"], "exited": t["exited"],
                     "unmatched": unmatched[run.id], "rehearsal": rehearsal_of(run)})
    return rows


def run_names(*, session: Session) -> list[dict[str, Any]]:
    """The latest runs' `{run_id, campaign, version}`, newest first: a filter's choices."""
    return [{"run_id": r, "campaign": c, "version": v} for r, c, v in session.execute(
        select(Run.id, Run.campaign, Run.version)
        .order_by(Run.created_at.desc(), Run.id.desc()).limit(MAX_LIMIT)).all()]


def recent_conversions(run_id: str, *, session: Session,
                       limit: int = RECENT_CONVERSIONS) -> list[dict[str, Any]]:
    """The run's latest conversions, newest first (its console page)."""
    rows = session.execute(
        select(Enrollment.customer_id, Enrollment.variant, ConversionEvent.type,
               ConversionEvent.amount, ConversionEvent.currency, ConversionEvent.promo_code,
               ConversionEvent.recorded_at)
        .join(ConversionEvent, ConversionEvent.event_id == Enrollment.conversion_event_id)
        .where(Enrollment.run_id == run_id)
        .order_by(ConversionEvent.recorded_at.desc()).limit(limit)).all()
    return [{"customer_id": c, "variant": v, "type": t, "amount": a, "currency": cur,
             "promo_code": p, "recorded_at": at} for c, v, t, a, cur, p, at in rows]


def status_of(run_id: str, *, session: Session) -> str:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}; `omnicascade runs list` shows the runs")
    return run_status(run, _status_counts(session, [run_id]).get(run_id, {}))


def run_show(run_id: str, *, session: Session) -> dict[str, Any]:
    from omnicascade.reports.winner import experiment_view  # it imports this module's peers
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}; `omnicascade runs list` shows the runs")
    data = load_run(run, session=session, settings=None)
    t = tally((m.status, m.exit_reason, m.converted, 1) for m in data.members)
    rows = step_rows(data)
    variants: dict[str, dict[str, int]] = {}
    for m in data.members:
        v = variants.setdefault(m.variant, {"enrolled": 0, "converted": 0})
        v["enrolled"] += 1
        v["converted"] += m.converted
    return {"run_id": run.id, "campaign": run.campaign, "version": run.version,
            "status": run_status(run, t["status_counts"]),
            "created_at": iso(run.created_at), "trigger": run.trigger_event,
            "enrolled": t["enrolled"], "excluded": data.excluded, "active": t["active"],
            "converted": t["converted"], **{k: t[k] for k in ENDING_KEYS},
            "steps": [_step(r) for r in rows if r["phase"] == Phase.CASCADE],
            "after_conversion": [_step(r) for r in rows if r["phase"] == Phase.FOLLOW_UP],
            "variants": variants,
            "sent_after_conversion": sends_after_conversion(session=session, run_id=run.id),
            "unmatched": unmatched_conversions(run, session=session),
            "rehearsal": rehearsal_of(run),
            "experiment": experiment_view(run.id, session=session)}


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
