"""Thompson sampling: weights are P(best) under Beta posteriors, deterministic for a seed,
never below the floor; by simulation, traffic moves to the better arm."""

from __future__ import annotations

import numpy as np
import pytest

from omnicascade.errors import ConfigError
from omnicascade.experiments import bandit_weights, posterior_means, regret_saved

FLOOR = 0.10
UPDATE_BATCH = 100      # closed conversion windows between two updates (`update_every`)
UPDATES = 10            # → 1,000 closed windows: the stated point
RUNS = 100


def test_weights_are_deterministic_for_a_seed_and_sum_to_one():
    arms = {"control": (50, 1000), "sms_first": (62, 1000)}
    w = bandit_weights(arms, floor=FLOOR, seed=42)
    assert w == bandit_weights(dict(reversed(arms.items())), floor=FLOOR, seed=42)
    assert np.isclose(sum(w.values()), 1.0)
    assert w != bandit_weights(arms, floor=FLOOR, seed=43)  # a different Monte Carlo stream


def test_weights_are_the_probability_of_being_best_lifted_to_the_floor():
    """With no data both arms are equally likely best; with overwhelming evidence the loser
    sits exactly on the floor; P(best) matches a direct computation."""
    assert bandit_weights({"a": (0, 0), "b": (0, 0)}, floor=FLOOR, seed=1)["a"] == \
        pytest.approx(0.5, abs=0.01)
    w = bandit_weights({"a": (0, 1000), "b": (500, 1000), "c": (10, 1000)}, floor=FLOOR, seed=1)
    assert w == {"a": pytest.approx(FLOOR), "b": pytest.approx(1 - 2 * FLOOR),
                 "c": pytest.approx(FLOOR)}
    rng = np.random.default_rng(9)
    a, b = rng.beta(1 + 50, 1 + 950, 400_000), rng.beta(1 + 62, 1 + 938, 400_000)
    p_best_b = (b > a).mean()
    w = bandit_weights({"a": (50, 1000), "b": (62, 1000)}, floor=0.0, draws=100_000, seed=3)
    assert w["b"] == pytest.approx(p_best_b, abs=0.01)


@pytest.mark.parametrize(("arms", "floor", "message"), [
    ({"a": (0, 0), "b": (0, 0), "c": (0, 0)}, 0.4, "impossible for 3 arms"),
    ({"a": (0, 0), "b": (0, 0)}, -0.1, "impossible"),
    ({"a": (5, 3), "b": (0, 0)}, 0.1, "conversions ≤ closed customers"),
    ({}, 0.1, "at least one arm"),
])
def test_impossible_floors_and_counts_are_clear_errors(arms, floor, message):
    with pytest.raises(ConfigError, match=message):
        bandit_weights(arms, floor=floor, seed=0)


def test_traffic_moves_to_the_better_arm_and_the_worse_keeps_its_floor():
    """5 % vs 8 %, weights updated after every 100 closed windows, starting 50/50: after
    1,000 closed windows the better arm gets ≥ 70 % of traffic on average over 100 runs
    (≈ 82 % measured; ≈ 87 % after 2,000), and the worse never gets less than the floor."""
    rng = np.random.default_rng(11)
    rates = {"a": 0.05, "b": 0.08}
    final, lowest = [], 1.0
    for run in range(RUNS):
        counts = {"a": [0, 0], "b": [0, 0]}
        w = {"a": 0.5, "b": 0.5}
        for update in range(UPDATES):
            to_b = int(rng.binomial(UPDATE_BATCH, w["b"]))
            for arm, n in (("a", UPDATE_BATCH - to_b), ("b", to_b)):
                counts[arm][0] += int(rng.binomial(n, rates[arm]))
                counts[arm][1] += n
            w = bandit_weights({k: (x, n) for k, (x, n) in counts.items()}, floor=FLOOR,
                               seed=run * 1_000 + update)
            lowest = min(lowest, w["a"], w["b"])
        final.append(w["b"])
    assert np.mean(final) >= 0.70, np.mean(final)
    assert lowest >= FLOOR - 1e-12


def test_regret_saved_values_the_allocation_at_posterior_means():
    arms = {"a": (48, 998), "b": (78, 998)}  # posterior means 0.049, 0.079
    r = posterior_means(arms)
    assert r == {"a": pytest.approx(0.049), "b": pytest.approx(0.079)}
    history = [({"a": 0.5, "b": 0.5}, 400), ({"a": 0.2, "b": 0.8}, 1000)]
    # 1,000 customers at 80/20 instead of 50/50: 300 moved from a to b, each worth 0.03
    assert regret_saved(history, arms) == pytest.approx(300 * 0.03)
    assert regret_saved([({"a": 0.9, "b": 0.1}, 1000)], arms) < 0  # leaned the wrong way
    with pytest.raises(ConfigError, match="without counts"):
        regret_saved([({"c": 1.0}, 10)], arms)
