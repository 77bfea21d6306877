"""Is there a winner? One function, `decide`, answers it from counts of customers whose
conversion window has closed; the caller stores the first Decision with a winner (the
experiment stops there, so checking after every enrollment stays honest — see the package
docstring for why).

The rule: every pair of arms is compared with the always-valid mSPRT of `sequential.py`, at
level (1 − confidence) / m with m = K(K−1)/2 pairs for K arms (Bonferroni). An arm wins
when it is significantly better than every other arm — a variant must beat the control and
every other variant; the control wins when it beats every variant. With a control and one
variant (the usual case) that is the single comparison at exactly 1 − confidence. Every
interval reported is at the same corrected level, so they hold simultaneously.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

from omnicascade.errors import ConfigError
from omnicascade.experiments.sequential import DEFAULT_TAU, moments, msprt
from omnicascade.vocabulary import WinnerMetric


@dataclass(frozen=True)
class ArmData:
    """One arm's customers whose conversion window has CLOSED (a customer still inside the
    window may yet convert: counting them would bias every arm toward "no conversion", the
    youngest arm most). `revenue` and `revenue_sq` are Σ and Σ² of each of those customers'
    revenue in one currency (0 for those who did not buy); only revenue_per_customer uses
    them."""

    customers: int
    conversions: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0


@dataclass(frozen=True)
class Comparison:
    """`arm` against `baseline`: effect = mean(arm) − mean(baseline) per customer (a rate
    difference for conversion_rate, money per customer for revenue_per_customer), its
    always-valid interval and p-value at the corrected level, and the e-value Λ (evidence:
    1/Λ is the p-value before clipping at 1)."""

    arm: str
    baseline: str
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    e_value: float
    n: int
    n_baseline: int


@dataclass(frozen=True)
class Decision:
    """What `decide` found. `winner` is None until one arm beats every other; `reason` says
    why in words a marketer reads. `comparisons` holds every pair (each variant against the
    control first); `alpha_per_comparison` is the Bonferroni-corrected level each used."""

    winner: str | None
    metric: str
    confidence: float
    control: str
    alpha_per_comparison: float
    comparisons: tuple[Comparison, ...]
    sample_sizes: dict[str, int]
    means: dict[str, float | None]
    reason: str

    def versus_control(self) -> tuple[Comparison, ...]:
        """Each variant against the control (what a report shows per variant)."""
        return tuple(c for c in self.comparisons if c.baseline == self.control)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (infinite interval ends become None) for storing the decision."""
        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and not math.isfinite(value) else value

        out = asdict(self)
        out["comparisons"] = [{k: clean(v) for k, v in c.items()} for c in out["comparisons"]]
        return out


def _validate(arms: Mapping[str, ArmData], control: str, metric: str, confidence: float,
              min_per_variant: int) -> None:
    if metric not in tuple(WinnerMetric):
        raise ConfigError(f"unknown winner metric {metric!r}: use "
                          + " or ".join(m.value for m in WinnerMetric))
    if not 0 < confidence < 1:
        raise ConfigError(f"winner confidence must be between 0 and 1 (0.95 for 95%), "
                          f"got {confidence!r}")
    if min_per_variant < 0:
        raise ConfigError(f"min_per_variant must be 0 or more, got {min_per_variant}")
    if control not in arms:
        raise ConfigError(f"the control arm {control!r} is not among {sorted(arms)}")
    if len(arms) < 2:
        raise ConfigError("a winner needs at least two arms")
    for name, a in arms.items():
        if a.customers < 0 or not 0 <= a.conversions <= a.customers:
            raise ConfigError(f"arm {name!r}: need 0 ≤ conversions ≤ customers, got "
                              f"{a.conversions} of {a.customers}")


def _ordered(arms: Mapping[str, ArmData], control: str) -> list[str]:
    return [control, *sorted(a for a in arms if a != control)]


def _fmt(metric: str, value: float) -> str:
    if metric == WinnerMetric.CONVERSION_RATE:
        return f"{value * 100:+.2f} pts"
    return f"{value:+.2f} per customer"


def decide(arms: Mapping[str, ArmData], *, control: str, metric: str, confidence: float,
           min_per_variant: int, tau: float = DEFAULT_TAU) -> Decision:
    """The winner (or None) of an experiment, from closed-window counts per arm.

    Nothing is decided until every arm has `min_per_variant` customers: the normal
    approximation needs that many, and a marketer expects it. Stateless: call it after every
    enrollment or every hour; once it names a winner, store it and stop asking (the error
    rate is controlled for "ever declares", so asking again after a declaration is fine, but
    reopening the split and continuing to count is a new experiment)."""
    _validate(arms, control, metric, confidence, min_per_variant)
    import numpy as np

    names = _ordered(arms, control)
    n = np.array([arms[a].customers for a in names], dtype=float)
    mean, var = moments(metric, n, [arms[a].conversions for a in names],
                        [arms[a].revenue for a in names], [arms[a].revenue_sq for a in names])
    pairs = list(combinations(range(len(names)), 2))  # (baseline, arm): control is index 0
    alpha = round((1 - confidence) / len(pairs), 12)  # 0.05, not 0.05000000000000004
    ib = np.array([p[0] for p in pairs])
    ia = np.array([p[1] for p in pairs])
    r = msprt(n[ib], mean[ib], var[ib], n[ia], mean[ia], var[ia], alpha=alpha, tau=tau)
    comparisons = tuple(
        Comparison(arm=names[a], baseline=names[b], effect=float(r["effect"][k]),
                   ci_low=float(r["ci_low"][k]), ci_high=float(r["ci_high"][k]),
                   p_value=float(r["p_value"][k]), e_value=float(np.exp(r["log_e"][k])),
                   n=int(n[a]), n_baseline=int(n[b]))
        for k, (b, a) in enumerate(pairs))
    sizes = {a: arms[a].customers for a in names}
    means = {a: (float(m) if np.isfinite(m) else None) for a, m in zip(names, mean, strict=True)}

    def result(winner: str | None, reason: str) -> Decision:
        return Decision(winner=winner, metric=metric, confidence=confidence, control=control,
                        alpha_per_comparison=alpha, comparisons=comparisons,
                        sample_sizes=sizes, means=means, reason=reason)

    short = [a for a in names if sizes[a] < min_per_variant]
    if short:
        waiting = ", ".join(f"{a} has {sizes[a]}" for a in short)
        return result(None, f"waiting for {min_per_variant} customers with a closed "
                            f"conversion window per arm: {waiting}")
    for candidate in names:
        beaten = [c for c in comparisons if candidate in (c.arm, c.baseline)
                  and c.p_value <= alpha
                  and (c.effect > 0) == (c.arm == candidate) and c.effect != 0]
        if len(beaten) == len(names) - 1:
            return result(candidate, _win_reason(candidate, control, metric, confidence,
                                                 comparisons, alpha, len(pairs)))
    best = min(c.p_value for c in comparisons)
    family = f", Bonferroni over {len(pairs)} comparisons" if len(pairs) > 1 else ""
    return result(None, f"no winner yet: no arm is better than every other at "
                        f"{confidence:.0%} confidence (always-valid test{family}; smallest "
                        f"p = {best:.3g}, needs ≤ {alpha:.3g})")


def _win_reason(winner: str, control: str, metric: str, confidence: float,
                comparisons: tuple[Comparison, ...], alpha: float, m: int) -> str:
    parts = []
    for c in comparisons:
        if winner not in (c.arm, c.baseline):
            continue
        sign = 1 if c.arm == winner else -1  # always say it as winner − other
        other = c.baseline if c.arm == winner else c.arm
        low, high = sorted((sign * c.ci_low, sign * c.ci_high))
        parts.append(f"vs {other} {_fmt(metric, sign * c.effect)} "
                     f"(interval {_fmt(metric, low)} to {_fmt(metric, high)}, "
                     f"p = {c.p_value:.3g})")
    who = "the control" if winner == control else winner
    family = f", Bonferroni over {m} comparisons" if m > 1 else ""
    return (f"{who} wins on {metric.replace('_', ' ')} at {confidence:.0%} confidence "
            f"(always-valid test{family}, each at p ≤ {alpha:.3g}): " + "; ".join(parts))
