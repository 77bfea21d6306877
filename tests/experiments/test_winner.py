"""`decide` by example: when it waits, who wins (a variant, the control, one of several),
what it reports, and the mistakes it refuses. The statistic itself is checked against the
closed form of Johari et al. (2017)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from omnicascade.errors import ConfigError
from omnicascade.experiments import ArmData, decide
from omnicascade.experiments.sequential import msprt, sum_moments


def _decide(arms: dict[str, ArmData], **kw: object):
    args: dict = {"control": "control", "metric": "conversion_rate", "confidence": 0.95,
                  "min_per_variant": 200} | kw
    return decide(arms, **args)


def test_the_mixture_ratio_is_the_papers_closed_form():
    """Λ = sqrt(V/(V+τ²)) · exp(τ²d² / (2V(V+τ²))) with τ² = tau² · pooled variance; the
    interval is where Λ(θ) < 1/α, so its ends are exactly where Λ(d − θ) = 1/α."""
    n_a, n_b, p_a, p_b, tau, alpha = 1200, 1300, 0.05, 0.075, 0.1, 0.05
    v_a, v_b = p_a * (1 - p_a), p_b * (1 - p_b)
    r = msprt(n_a, p_a, v_a, n_b, p_b, v_b, alpha=alpha, tau=tau)
    v, t2, d = v_a / n_a + v_b / n_b, tau**2 * (v_a + v_b) / 2, p_b - p_a

    def lam(x: float) -> float:
        return np.sqrt(v / (v + t2)) * np.exp(t2 * x * x / (2 * v * (v + t2)))

    assert np.isclose(float(np.exp(r["log_e"])), lam(d))
    assert np.isclose(float(r["p_value"]), min(1, 1 / lam(d)))
    assert np.isclose(lam(d - float(r["ci_low"])), 1 / alpha)
    assert np.isclose(lam(float(r["ci_high"]) - d), 1 / alpha)


def test_nothing_is_decided_before_every_arm_has_its_minimum():
    d = _decide({"control": ArmData(150, 2), "sms_first": ArmData(900, 90)})
    assert d.winner is None
    assert "waiting for 200" in d.reason and "control has 150" in d.reason
    assert d.sample_sizes == {"control": 150, "sms_first": 900}


def test_a_clearly_better_variant_wins_with_its_effect_and_interval():
    d = _decide({"control": ArmData(2500, 125), "sms_first": ArmData(2500, 200)})
    assert d.winner == "sms_first"
    (c,) = d.versus_control()
    assert (c.arm, c.baseline, c.n, c.n_baseline) == ("sms_first", "control", 2500, 2500)
    assert np.isclose(c.effect, 0.03) and 0 < c.ci_low < 0.03 < c.ci_high
    assert c.p_value <= 0.05 and np.isclose(c.e_value, 1 / c.p_value)
    assert d.alpha_per_comparison == 0.05
    assert "sms_first wins on conversion rate at 95% confidence" in d.reason
    assert "+3.00 pts" in d.reason
    stored = json.loads(json.dumps(d.to_dict()))
    assert stored["winner"] == "sms_first" and stored["comparisons"][0]["n"] == 2500


def test_the_interval_excludes_zero_exactly_when_the_p_value_is_small_enough():
    for x_b in range(120, 200, 7):
        d = _decide({"control": ArmData(2500, 125), "b": ArmData(2500, x_b)})
        (c,) = d.versus_control()
        assert (c.p_value <= 0.05) == (c.ci_low > 0) == (d.winner == "b")


def test_the_control_wins_when_it_beats_every_variant():
    d = _decide({"control": ArmData(3000, 240), "a": ArmData(3000, 140),
                 "b": ArmData(3000, 150)})
    assert d.winner == "control"
    assert d.reason.startswith("the control wins")


def test_the_control_does_not_win_when_one_variant_is_a_tie():
    d = _decide({"control": ArmData(3000, 240), "a": ArmData(3000, 140),
                 "b": ArmData(3000, 238)})
    assert d.winner is None


def test_several_variants_pay_a_bonferroni_price_and_must_beat_each_other():
    arms = {"control": ArmData(2500, 125), "a": ArmData(2500, 185), "b": ArmData(2500, 180)}
    d = _decide(arms)
    assert np.isclose(d.alpha_per_comparison, 0.05 / 3) and len(d.comparisons) == 3
    assert [c.arm for c in d.versus_control()] == ["a", "b"]
    # a and b both beat the control but not each other: no winner, whichever leads
    assert d.winner is None and "Bonferroni over 3 comparisons" in d.reason
    # the same a against the control alone, at α = 0.05, would have won
    alone = _decide({"control": arms["control"], "a": arms["a"]})
    assert alone.winner == "a"
    # once a pulls clear of b, a wins
    d = _decide({"control": ArmData(2500, 125), "a": ArmData(2500, 230), "b": ArmData(2500, 160)})
    assert d.winner == "a" and "vs b" in d.reason and "vs control" in d.reason


def test_revenue_per_customer_uses_sums_and_sums_of_squares():
    rng = np.random.default_rng(5)
    a = np.where(rng.random(3000) < 0.05, rng.lognormal(np.log(50), 0.8, 3000), 0.0)
    b = np.where(rng.random(3000) < 0.09, rng.lognormal(np.log(50), 0.8, 3000), 0.0)
    mean, var = sum_moments(b.sum(), (b * b).sum(), 3000)
    assert np.isclose(mean, b.mean()) and np.isclose(var, b.var(ddof=1))
    arms = {"control": ArmData(3000, int((a > 0).sum()), a.sum(), (a * a).sum()),
            "big_offer": ArmData(3000, int((b > 0).sum()), b.sum(), (b * b).sum())}
    d = _decide(arms, metric="revenue_per_customer")
    (c,) = d.versus_control()
    assert np.isclose(c.effect, b.mean() - a.mean())
    assert d.winner == "big_offer" and "per customer" in d.reason


def test_no_variance_yet_claims_nothing():
    d = _decide({"control": ArmData(300, 0), "b": ArmData(300, 0)})
    (c,) = d.versus_control()
    assert d.winner is None and c.p_value == 1.0
    assert d.to_dict()["comparisons"][0]["ci_low"] is None  # unbounded, stored as null


@pytest.mark.parametrize(("arms", "kw", "message"), [
    ({"control": ArmData(10, 1), "b": ArmData(10, 1)}, {"metric": "clicks"}, "unknown winner metric"),
    ({"control": ArmData(10, 1), "b": ArmData(10, 1)}, {"confidence": 95}, "between 0 and 1"),
    ({"control": ArmData(10, 1), "b": ArmData(10, 1)}, {"control": "ctrl"}, "not among"),
    ({"control": ArmData(10, 1)}, {}, "at least two arms"),
    ({"control": ArmData(10, 11), "b": ArmData(10, 1)}, {}, "conversions ≤ customers"),
    ({"control": ArmData(10, 1), "b": ArmData(10, 1)}, {"min_per_variant": -1}, "0 or more"),
])
def test_configuration_mistakes_are_clear_errors(arms, kw, message):
    with pytest.raises(ConfigError, match=message):
        _decide(arms, **kw)


def test_importing_the_package_loads_no_statistics_stack():
    """The enrollment path will import it in the worker: numpy/scipy load on first use."""
    code = ("import sys, omnicascade.experiments; print(sorted(m for m in "
            "('numpy', 'scipy', 'statsmodels') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
