"""Which variant a new entrant gets — decided here, at enrollment, never in workflow code,
and stored on the enrollment (a customer in flight keeps it whatever happens next):

1. the global control (OMNICASCADE_GLOBAL_CONTROL): a stable keyed hash puts that share of
   all customers out of every campaign's messages (a `transactional: true` campaign is
   exempt); they are enrolled as the holdout with status `global_control`;
2. the campaign's own holdout, as written;
3. a declared winner (cascade/winner.py): every later entrant gets it;
4. a bandit's newest stored weights (`assign(customer, weights, salt=run id)`);
5. otherwise the split as written (campaign/variants.py).

The bandit's weights are recomputed every `update_every` (on the run's clock) by the
reconciler's pass below, seeded from the run id and the update number, and stored with a
timestamp: the history is exactly what entrants got.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.campaign.variants import assign_variant
from omnicascade.cascade.cascade_input import run_spec
from omnicascade.cascade.winner import DECIDING, closed_arms, current_winner, started_at
from omnicascade.clock import clock_of, now_utc
from omnicascade.config import Settings
from omnicascade.db.experiment_models import AllocationUpdate, history
from omnicascade.db.models import Run
from omnicascade.errors import ConfigError
from omnicascade.experiments import assign, bandit_weights, in_global_control
from omnicascade.vocabulary import HOLDOUT


def global_share(settings: Settings) -> float:
    """OMNICASCADE_GLOBAL_CONTROL as a fraction: 5% (or 0.05) → 0.05."""
    text = str(settings.global_control).strip()
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text or 0)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 0.5:
        raise ConfigError(f"OMNICASCADE_GLOBAL_CONTROL={text!r} is not a share between 0% and "
                          f"50% (write e.g. 5%; 10% or less is the usual advice)")
    return share


def in_control(settings: Settings, customer_id: str) -> bool:
    share = global_share(settings)
    return bool(share) and in_global_control(customer_id, share=share,
                                             salt=settings.global_control_salt)


def latest_weights(run_id: str, *, session: Session) -> dict[str, float] | None:
    row = session.scalar(select(AllocationUpdate).where(AllocationUpdate.run_id == run_id)
                         .order_by(AllocationUpdate.id.desc()).limit(1))
    return dict(row.weights) if row else None


def entrant_variants(run: Run, customer_ids: Sequence[str], *, session: Session,
                     settings: Settings) -> tuple[dict[str, str], set[str]]:
    """Each new entrant's variant, and who of them is in the global control."""
    spec = run_spec(run)
    controls = set() if spec.transactional else {c for c in customer_ids
                                                  if in_control(settings, c)}
    written = {c: assign_variant(spec, c) for c in customer_ids}
    experiment = spec.experiment
    winner = current_winner(run.id, session=session) if experiment else None
    weights = latest_weights(run.id, session=session) \
        if experiment and experiment.allocation == "bandit" and winner is None else None
    out = {}
    for c, variant in written.items():
        if c in controls or variant == HOLDOUT:
            out[c] = HOLDOUT
        elif winner is not None:
            out[c] = winner
        elif weights:
            out[c] = assign(c, weights, salt=run.id)
        else:
            out[c] = variant
    return out, controls


def _seed(run_id: str, number: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{run_id}:{number}".encode()).digest()[:8], "big")


def update_bandit(run: Run, *, session: Session, now: datetime | None = None
                  ) -> AllocationUpdate | None:
    """Store new weights when `update_every` has passed since the last (none yet: now)."""
    spec = run_spec(run)
    experiment = spec.experiment
    if experiment is None or experiment.allocation != "bandit":
        return None
    now = now or now_utc()
    rows = history(run.id, session=session)
    if current_winner(run.id, session=session) is not None:
        return None  # a winner takes every entrant: nothing left to allocate
    last = session.scalar(select(AllocationUpdate).where(AllocationUpdate.run_id == run.id)
                          .order_by(AllocationUpdate.id.desc()).limit(1))
    every = clock_of(run).wall_span(timedelta(seconds=experiment.update_every))
    if last is not None and now - last.at < every:
        return None
    arms = closed_arms(run, started_at(run, rows), now, session=session)
    counts = {a: (d.conversions, d.customers) for a, d in arms.items()}
    number = (last.number + 1) if last else 1
    weights = bandit_weights(counts, floor=experiment.floor / 100, seed=_seed(run.id, number))
    row = AllocationUpdate(run_id=run.id, number=number, at=now, weights=weights,
                           counts={a: list(v) for a, v in counts.items()})
    session.add(row)
    session.flush()
    return row


def update_all(*, session: Session) -> int:
    runs = session.scalars(select(Run).where(Run.status.in_(DECIDING)))
    return sum(update_bandit(run, session=session) is not None for run in runs
               if (e := run_spec(run).experiment) and e.allocation == "bandit")

