"""The always-valid test itself: mSPRT with a normal mixing prior on the difference of two
means (Johari, Pekelis & Walsh 2017; Optimizely's "always valid p-values").

Every function here takes numpy arrays (or plain floats) and works element by element, so
the simulation tests run the very function `winner.decide` calls over every look of 500
experiments at once. numpy/scipy are imported inside the functions: the worker and the API
must not load them at start.

For arms A (baseline) and B with per-customer means m_a, m_b, per-customer variances s²_a,
s²_b and n_a, n_b customers, the estimate of the effect θ = μ_b − μ_a is d = m_b − m_a with
variance V = s²_a/n_a + s²_b/n_b. Under H0 (θ = 0) d ~ N(0, V); mixing the alternative over
θ ~ N(0, τ²) gives d ~ N(0, V + τ²). The mixture likelihood ratio is the ratio of those two
normal densities (scipy.stats.norm.logpdf), and

    p-value            = min(1, 1 / Λ)       (always valid: P(ever ≤ α | H0) ≤ α, Ville)
    confidence seq.    = {θ : Λ(θ) < 1/α} = d ± sqrt(V(V+τ²)/τ² · (2·ln(1/α) + ln((V+τ²)/V)))

τ is given in standard deviations of the metric per customer (τ² = tau² · pooled s²), so one
default fits conversion rates and revenue in any currency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omnicascade.errors import ConfigError
from omnicascade.vocabulary import WinnerMetric

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

# The mixing standard deviation, in standard deviations of the per-customer metric. 0.1 puts
# the prior's weight on the effects marketing changes actually make: 5 % → 8 % conversion is
# 0.12 sd; a 10 % relative lift on a 5 % rate is 0.02 sd. Larger τ answers big effects sooner
# and small ones later (and vice versa); see the package docstring.
DEFAULT_TAU = 0.1


def bernoulli_moments(conversions: ArrayLike, customers: ArrayLike
                      ) -> tuple[NDArray[Any], NDArray[Any]]:
    """Per-customer mean and variance of a 0/1 outcome: (x/n, p(1−p)). Empty arms give nan."""
    import numpy as np

    x = np.asarray(conversions, dtype=float)
    n = np.asarray(customers, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, x / n, np.nan)
    return p, p * (1 - p)


def sum_moments(total: ArrayLike, total_sq: ArrayLike, customers: ArrayLike
                ) -> tuple[NDArray[Any], NDArray[Any]]:
    """Per-customer mean and (unbiased) variance from Σy, Σy² and n — what SQL can sum up
    (revenue per customer, counting 0 for those who did not buy). n < 2 gives nan variance."""
    import numpy as np

    s = np.asarray(total, dtype=float)
    s2 = np.asarray(total_sq, dtype=float)
    n = np.asarray(customers, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, s / n, np.nan)
        var = np.where(n > 1, (s2 - n * mean * mean) / (n - 1), np.nan)
    return mean, np.maximum(var, 0.0)  # rounding can make Σy² − n·m² a hair below zero


def msprt(n_a: ArrayLike, mean_a: ArrayLike, var_a: ArrayLike,
          n_b: ArrayLike, mean_b: ArrayLike, var_b: ArrayLike,
          *, alpha: float, tau: float = DEFAULT_TAU) -> dict[str, NDArray[Any]]:
    """B against A: the effect d = mean_b − mean_a, log Λ (the log e-value), the always-valid
    p-value and the (1 − alpha) confidence sequence [ci_low, ci_high] for the effect.

    Where the test is undefined (an empty arm, or no variance in either arm yet) log Λ is 0,
    p is 1 and the interval is unbounded: nothing is claimed.
    """
    import numpy as np
    from scipy.stats import norm

    na, nb = np.asarray(n_a, dtype=float), np.asarray(n_b, dtype=float)
    ma, mb = np.asarray(mean_a, dtype=float), np.asarray(mean_b, dtype=float)
    va, vb = np.asarray(var_a, dtype=float), np.asarray(var_b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = mb - ma
        v = va / na + vb / nb
        t2 = tau * tau * (va + vb) / 2  # the prior on the metric's own scale
        ok = (na > 0) & (nb > 0) & np.isfinite(v) & (v > 0) & (t2 > 0) & np.isfinite(d)
        v_ = np.where(ok, v, 1.0)
        t2_ = np.where(ok, t2, 1.0)
        d_ = np.where(ok, d, 0.0)
        log_lr = (norm.logpdf(d_, scale=np.sqrt(v_ + t2_)) - norm.logpdf(d_, scale=np.sqrt(v_)))
        log_lr = np.where(ok, log_lr, 0.0)
        half = np.sqrt(v_ * (v_ + t2_) / t2_
                       * (2 * np.log(1 / alpha) + np.log((v_ + t2_) / v_)))
        half = np.where(ok, half, np.inf)
    return {"effect": d, "log_e": log_lr, "p_value": np.minimum(1.0, np.exp(-log_lr)),
            "ci_low": d - half, "ci_high": d + half}


def moments(metric: str, customers: ArrayLike, conversions: ArrayLike, revenue: ArrayLike,
            revenue_sq: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
    """The per-customer mean and variance of `metric` (a vocabulary.WinnerMetric)."""
    if metric == WinnerMetric.CONVERSION_RATE:
        return bernoulli_moments(conversions, customers)
    if metric == WinnerMetric.REVENUE_PER_CUSTOMER:
        return sum_moments(revenue, revenue_sq, customers)
    raise ConfigError(f"unknown winner metric {metric!r}: use "
                      + " or ".join(m.value for m in WinnerMetric))
