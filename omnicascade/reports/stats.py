"""The statistics behind the report, each a thin, named wrapper over statsmodels/scipy so
the numbers match what an analyst would get from the same libraries.

- one rate:               Wilson score interval (proportion_confint, method="wilson")
- B vs A:                 two-sided two-proportion z-test (proportions_ztest, pooled; the
                          same p-value as a chi-square test without continuity correction)
                          and Newcombe's hybrid-score interval for the difference
- lift over holdout:      the same difference, plus the relative lift (risk ratio − 1) with
                          the Katz log interval
- "how many more?":       NormalIndPower on Cohen's h (proportion_effectsize), 80% power
- several variants:       Holm adjustment of the p-values (multipletests)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from scipy.stats import norm
from statsmodels.stats.multitest import multipletests  # type: ignore[import-untyped]
from statsmodels.stats.power import NormalIndPower  # type: ignore[import-untyped]
from statsmodels.stats.proportion import (  # type: ignore[import-untyped]
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

ALPHA = 0.05
POWER = 0.8


def _f(value: Any, digits: int = 6) -> float | None:
    """Plain, rounded float for JSON; None for nan/inf."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def rate_ci(converted: int, enrolled: int, alpha: float = ALPHA) -> dict[str, Any]:
    """Conversion rate with its Wilson score interval (None when nobody is enrolled)."""
    if enrolled <= 0:
        return {"converted": converted, "enrolled": enrolled, "rate": None, "ci_low": None,
                "ci_high": None}
    low, high = proportion_confint(converted, enrolled, alpha=alpha, method="wilson")
    return {"converted": converted, "enrolled": enrolled, "rate": _f(converted / enrolled),
            "ci_low": _f(low), "ci_high": _f(high)}


def compare(x_a: int, n_a: int, x_b: int, n_b: int, alpha: float = ALPHA) -> dict[str, Any]:
    """B minus A: difference of rates, its Newcombe interval, z and two-sided p-value.
    p is None when the test is undefined (an empty group, or everyone/no one converted)."""
    if n_a <= 0 or n_b <= 0:
        return {"diff": None, "ci_low": None, "ci_high": None, "z": None, "p_value": None}
    diff = x_b / n_b - x_a / n_a
    low, high = confint_proportions_2indep(x_b, n_b, x_a, n_a, method="newcomb",
                                           compare="diff", alpha=alpha)
    z = p = None
    if 0 < x_a + x_b < n_a + n_b:  # pooled variance is zero otherwise
        z, p = proportions_ztest([x_b, x_a], [n_b, n_a], alternative="two-sided")
    return {"diff": _f(diff), "ci_low": _f(low), "ci_high": _f(high), "z": _f(z),
            "p_value": _f(p, 8)}


def relative_lift(x_t: int, n_t: int, x_h: int, n_h: int,
                  alpha: float = ALPHA) -> dict[str, Any]:
    """Treated rate / holdout rate − 1, with the Katz log interval of the ratio. Undefined
    (None) while either group has no conversions: a ratio over zero says nothing."""
    if min(x_t, x_h) <= 0 or min(n_t, n_h) <= 0:
        return {"lift": None, "ci_low": None, "ci_high": None}
    ratio = (x_t / n_t) / (x_h / n_h)
    low, high = confint_proportions_2indep(x_t, n_t, x_h, n_h, method="log",
                                           compare="ratio", alpha=alpha)
    return {"lift": _f(ratio - 1), "ci_low": _f(low - 1), "ci_high": _f(high - 1)}


def sample_size_per_group(p_a: float, p_b: float, alpha: float = ALPHA,
                          power: float = POWER) -> int | None:
    """Customers needed in each of two equal groups to detect p_a vs p_b (two-sided).
    None when there is no difference to detect."""
    if p_a == p_b or not (0 <= p_a <= 1 and 0 <= p_b <= 1):
        return None
    effect = abs(float(proportion_effectsize(p_b, p_a)))
    if effect < 1e-9:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a huge effect (100 % vs 0 %) makes the solver give up
        n = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power,
                                         ratio=1.0, alternative="two-sided")
    if not math.isfinite(float(n)):  # …then the equation it solves, in closed form
        z = float(norm.ppf(1 - alpha / 2) + norm.ppf(power))
        n = 2 * (z / effect) ** 2
    return max(math.ceil(float(n)), 2)


def holm(p_values: Sequence[float | None], alpha: float = ALPHA) -> list[float | None]:
    """Holm-adjusted p-values (several variants against one baseline)."""
    present = [(i, p) for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    if present:
        adjusted = multipletests([p for _, p in present], alpha=alpha, method="holm")[1]
        for (i, _), p in zip(present, adjusted, strict=True):
            out[i] = _f(p, 8)
    return out


def pts(diff: float) -> str:
    return f"{diff * 100:+.1f} pts"


def p_text(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def verdict(name_a: str, name_b: str, cmp: dict[str, Any], n_a: int, n_b: int, x_a: int,
            x_b: int, alpha: float = ALPHA, p_value: float | None = None,
            unit: str = "variant") -> dict[str, Any]:
    """Plain words for B vs A, and how many more customers 80% power would need."""
    p = cmp["p_value"] if p_value is None else p_value
    out: dict[str, Any] = {"significant": False, "winner": None, "needed_per_variant": None,
                           "more_per_variant": None}
    if cmp["diff"] is None:
        out["text"] = "no data yet"
        return out
    if p is None:
        # the variants named, as a marketer reads a split test: "sms_first: 3/40 vs control 0/38"
        out["text"] = (f"{name_b}: {x_b}/{n_b} vs {name_a} {x_a}/{n_a} converted — too few "
                       f"conversions to tell a difference yet")
        return out
    if p < alpha and cmp["diff"] != 0:
        winner, loser = (name_b, name_a) if cmp["diff"] > 0 else (name_a, name_b)
        out.update(significant=True, winner=winner,
                   text=f"{winner} beats {loser}: {pts(abs(cmp['diff']))}, {p_text(p)}")
        return out
    needed = sample_size_per_group(x_a / n_a, x_b / n_b, alpha)
    if needed is None:
        out["text"] = f"not yet significant: no difference so far ({p_text(p)})"
        return out
    more = max(0, needed - min(n_a, n_b))
    out.update(needed_per_variant=needed, more_per_variant=more)
    counts = f"{name_b} {x_b}/{n_b} vs {name_a} {x_a}/{n_a}"  # who, and how many converted
    if more == 0:
        out["text"] = (f"not significant ({counts}: {pts(cmp['diff'])}, "
                       f"{p_text(p)}): the groups are large enough, so the gap is likely noise")
        return out
    out["text"] = (f"not yet significant ({counts}: {pts(cmp['diff'])}, "
                   f"{p_text(p)}): need about {more:,} more customers per {unit} for "
                   f"{POWER:.0%} power")
    return out
