"""Experiments that decide, on the product's side: which customers' outcomes are known, the
stored decision of a run, and the periodic pass that asks `experiments.decide` (the
statistics live there, without I/O).

A customer's conversion window is CLOSED when their cascade has ended and the variant's
planned length plus `conversion.window` has passed since they entered (both on the run's
clock: a rehearsal's week passes N times faster). The time is the same whether they
converted or not, so early converters do not tilt the counts toward the faster arm.

A run's experiment starts at launch, or at the newest `--reset` (a reopened split is a new
experiment: only customers who entered after it count). The first winner is stored and
never re-decided; `max_duration` without a winner stores an `expired` note and the split
continues as written.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.campaign.model import CampaignSpec
from omnicascade.campaign.variants import variant_names, variant_steps
from omnicascade.cascade.cascade_input import run_spec
from omnicascade.clock import clock_of, now_utc
from omnicascade.db.experiment_models import ExperimentDecision, history, standing
from omnicascade.db.models import ConversionEvent, Enrollment, Run
from omnicascade.errors import UserFacingError
from omnicascade.experiments import ArmData, Decision, decide
from omnicascade.vocabulary import EnrollmentStatus, RunStatus

DECIDING = (RunStatus.LISTENING, RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.DRAINING)


class NoExperiment(UserFacingError, ValueError):
    """The run has no experiment to decide, or no such variant."""


def control_of(spec: CampaignSpec) -> str:
    """The arm the others are measured against: `control` if written, else the first."""
    names = variant_names(spec)
    return "control" if "control" in names else names[0]


def current_winner(run_id: str, *, session: Session) -> str | None:
    row = standing(history(run_id, session=session))
    return row.winner if row else None


def started_at(run: Run, rows: Iterable[ExperimentDecision]) -> datetime:
    resets = [r.decided_at for r in rows if r.kind == "reset"]
    return max(resets) if resets else run.created_at


def _planned_s(spec: CampaignSpec, variant: str) -> int:
    return sum(step.wait for step in variant_steps(spec, variant))


def closed_arms(run: Run, since: datetime, now: datetime, *,
                session: Session) -> dict[str, ArmData]:
    """Per variant (holdout and global control aside): customers who entered since `since`
    and whose conversion window has closed, their conversions and revenue (Σ, Σ²)."""
    spec, clock = run_spec(run), clock_of(run)
    names = variant_names(spec)
    planned = {n: clock.wall_span(timedelta(seconds=_planned_s(spec, n))) for n in names}
    rows = session.execute(
        select(Enrollment.variant, Enrollment.enrolled_at, Enrollment.finished_at,
               Enrollment.conversion_window_s, Enrollment.converted_at, ConversionEvent.amount)
        .outerjoin(ConversionEvent, ConversionEvent.event_id == Enrollment.conversion_event_id)
        .where(Enrollment.run_id == run.id, Enrollment.enrolled_at >= since,
               Enrollment.variant.in_(names), Enrollment.finished_at.is_not(None),
               Enrollment.status.not_in([EnrollmentStatus.EXCLUDED,
                                         EnrollmentStatus.GLOBAL_CONTROL])))
    counts = {n: [0, 0, 0.0, 0.0] for n in names}
    for variant, enrolled, _finished, window_s, converted, amount in rows:
        closes = enrolled + planned[variant] + timedelta(seconds=window_s or 0)
        if closes > now:
            continue
        c = counts[variant]
        c[0] += 1
        if converted is not None:
            c[1] += 1
            money = float(amount or Decimal(0))
            c[2] += money
            c[3] += money * money
    return {n: ArmData(int(c[0]), int(c[1]), c[2], c[3]) for n, c in counts.items()}


def evidence(run: Run, *, session: Session, now: datetime | None = None) -> Decision | None:
    """What `decide` says about the run's experiment right now (None: no `winner:`)."""
    spec = run_spec(run)
    rule = spec.experiment.winner if spec.experiment else None
    if rule is None:
        return None
    arms = closed_arms(run, started_at(run, history(run.id, session=session)),
                       now or now_utc(), session=session)
    return decide(arms, control=control_of(spec), metric=rule.metric,
                  confidence=rule.confidence, min_per_variant=rule.min_per_variant)


def _store(run: Run, kind: str, *, session: Session, by: str = "auto",
           decision: Decision | None = None, winner: str | None = None,
           note: str | None = None) -> ExperimentDecision:
    row = ExperimentDecision(run_id=run.id, kind=kind, decided_at=now_utc(), by=by,
                             winner=winner, note=note, rehearsal=clock_of(run).rehearsal)
    if decision is not None:
        row.metric, row.sample_sizes = decision.metric, decision.sample_sizes
        row.detail = decision.to_dict()
        versus = {c.arm: c for c in decision.versus_control()}
        if winner is not None and winner in versus:
            c = versus[winner]
            row.effect, row.ci_low, row.ci_high, row.p_value = (c.effect, c.ci_low,
                                                                c.ci_high, c.p_value)
        elif winner == decision.control and versus:  # the control beat every variant
            c = max(versus.values(), key=lambda c: c.effect)  # the closest variant
            row.effect, row.ci_low, row.ci_high, row.p_value = (-c.effect, -c.ci_high,
                                                                -c.ci_low, c.p_value)
    session.add(row)
    session.flush()
    return row


def decide_run(run: Run, *, session: Session, now: datetime | None = None
               ) -> ExperimentDecision | None:
    """One look at a run: store a winner (the first one only) or the max_duration note."""
    spec = run_spec(run)
    rule = spec.experiment.winner if spec.experiment else None
    if rule is None:
        return None
    rows = history(run.id, session=session)
    since = started_at(run, rows)
    if standing(rows) is not None or any(r.kind == "expired" and r.decided_at >= since
                                         for r in rows):
        return None  # decided, or ended without a winner: nothing more to look at
    now = now or now_utc()
    found = evidence(run, session=session, now=now)
    assert found is not None
    if found.winner is not None:
        return _store(run, "winner", session=session, decision=found, winner=found.winner,
                      note=found.reason)
    limit = rule.max_duration
    if limit and now - since >= clock_of(run).wall_span(timedelta(seconds=limit)):
        return _store(run, "expired", session=session, decision=found,
                      note=f"max_duration passed without a winner ({found.reason}); "
                           f"nothing was declared and the split continues as written")
    return None


def decide_all(*, session: Session) -> int:
    """The periodic pass (the reconciler calls it): every deciding run, once."""
    runs = session.scalars(select(Run).where(Run.status.in_(DECIDING)))
    return sum(decide_run(run, session=session) is not None for run in runs
               if (spec := run_spec(run)).experiment and spec.experiment.winner)


def declare(run: Run, variant: str, *, session: Session) -> ExperimentDecision:
    """`runs winner RUN --declare VARIANT`: a marketer's decision, stored as manual."""
    spec = run_spec(run)
    names = variant_names(spec) if spec.experiment else []
    if variant not in names:
        raise NoExperiment(f"{run.id} has no variant {variant!r}"
                           + (f": choose one of {', '.join(names)}" if names
                              else " (its campaign has no experiment)"))
    found = evidence(run, session=session) if spec.experiment and spec.experiment.winner \
        else None
    return _store(run, "winner", session=session, by="manual", decision=found,
                  winner=variant, note=f"declared by hand: later entrants get {variant}")


def reset(run: Run, *, session: Session) -> ExperimentDecision:
    """`runs winner RUN --reset`: the split as written again, a new experiment from now."""
    if not run_spec(run).experiment:
        raise NoExperiment(f"{run.id}'s campaign has no experiment to reopen")
    return _store(run, "reset", session=session, by="manual",
                  note="split reopened: later entrants are split as written; only "
                       "customers entering from now on count toward a new decision")
