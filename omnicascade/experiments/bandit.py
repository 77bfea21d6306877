"""Thompson sampling on conversion rate: how much of the next period's traffic each arm gets.

Each arm's rate has a Beta(1 + conversions, 1 + closed − conversions) posterior (a uniform
prior, updated by customers whose conversion window has closed). An arm's weight is the
posterior probability that it is the best arm, estimated from `draws` joint samples with a
seeded numpy Generator — the same counts and seed give the same weights on every machine
and numpy version that keeps the PCG64 stream, so the caller can store them and recompute
them. Then every arm is lifted to at least `floor`:

    weight = floor + (1 − K·floor) · P(best)

which keeps the ordering, sums to 1 and never dips below the floor (a floored-then-
renormalised vector can). The floor keeps learning about every arm and keeps enough
customers in each for the report, but bandit arms are still not a fair A/B comparison: the
share changed over time, and so may the customers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from omnicascade.errors import ConfigError

DEFAULT_DRAWS = 10_000


def _check(arms: Mapping[str, tuple[int, int]]) -> list[str]:
    if not arms:
        raise ConfigError("a bandit needs at least one arm")
    for name, (x, n) in arms.items():
        if n < 0 or not 0 <= x <= n:
            raise ConfigError(f"arm {name!r}: need 0 ≤ conversions ≤ closed customers, got "
                              f"{x} of {n}")
    return sorted(arms)  # the draw order, fixed whatever order the caller's dict has


def bandit_weights(arms: Mapping[str, tuple[int, int]], *, floor: float,
                   draws: int = DEFAULT_DRAWS, seed: int) -> dict[str, float]:
    """Each arm's share of new entrants: P(best) under Beta-Binomial posteriors, floored.

    `arms` maps arm → (conversions, customers whose window closed). Raises ConfigError when
    the floor cannot be met (floor · arms > 1) or the counts are impossible."""
    names = _check(arms)
    if not floor >= 0 or floor * len(names) > 1:  # `not >=` catches nan
        raise ConfigError(f"bandit floor {floor:.0%} is impossible for {len(names)} arms "
                          f"(it must be 0% or more, and floor × arms at most 100%)")
    if draws < 1:
        raise ConfigError(f"draws must be at least 1, got {draws}")
    import numpy as np

    rng = np.random.default_rng(seed)
    x = np.array([arms[a][0] for a in names], dtype=float)
    n = np.array([arms[a][1] for a in names], dtype=float)
    samples = rng.beta(1 + x, 1 + n - x, size=(draws, len(names)))
    best = np.bincount(samples.argmax(axis=1), minlength=len(names)) / draws
    weights = floor + (1 - len(names) * floor) * best
    return {a: float(w) for a, w in zip(names, weights, strict=True)}


def posterior_means(arms: Mapping[str, tuple[int, int]]) -> dict[str, float]:
    """The Beta posterior mean (1 + x) / (2 + n) of each arm's conversion rate."""
    _check(arms)
    return {a: (1 + x) / (2 + n) for a, (x, n) in arms.items()}


def regret_saved(history: Iterable[tuple[Mapping[str, float], int]],
                 arms: Mapping[str, tuple[int, int]]) -> float:
    """Estimated conversions the bandit gained over a fixed equal split.

    `history` is the allocation over time: (weights, customers enrolled while those weights
    held) per period. The estimate values both allocations at today's posterior means r:

        Σ_periods customers · Σ_arms (weight − 1/K) · r_arm

    i.e. expected conversions under the weights used minus under 1/K each, for the same
    customers. It is a point estimate, not a measured count: it assumes the rates did not
    drift, and the weakest arm's rate (measured on the fewest customers) is the least
    certain. Negative when the bandit leaned on an arm that turned out worse."""
    means = posterior_means(arms)
    k = len(means)
    saved = 0.0
    for weights, customers in history:
        unknown = set(weights) - set(means)
        if unknown:
            raise ConfigError(f"allocation history names arms without counts: {sorted(unknown)}")
        saved += customers * sum((weights.get(a, 0.0) - 1 / k) * r for a, r in means.items())
    return saved
