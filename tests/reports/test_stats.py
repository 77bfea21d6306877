"""Report statistics against textbook values, hand computation and scipy on fixed data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chi2_contingency, norm

from omnicascade.reports import stats
from omnicascade.reports.quantiles import percentiles

# Newcombe (1998) "Two-sided confidence intervals for the single proportion", Stat Med
# 17:857, Table II, method 3 (Wilson score interval without continuity correction).
NEWCOMBE_WILSON = [((81, 263), (0.2553, 0.3662)), ((15, 148), (0.0624, 0.1605)),
                   ((0, 20), (0.0000, 0.1611)), ((1, 29), (0.0061, 0.1718))]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE_WILSON)
def test_wilson_interval_matches_newcombe_table(counts, expected):
    r = stats.rate_ci(*counts)
    assert r["rate"] == pytest.approx(counts[0] / counts[1], abs=1e-6)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(expected, abs=6e-5)


def test_wilson_upper_bound_for_zero_successes_by_hand():
    z2 = norm.ppf(0.975) ** 2
    assert stats.rate_ci(0, 50)["ci_high"] == pytest.approx(z2 / (50 + z2), abs=1e-6)


def test_rate_of_nobody_is_undefined_not_zero():
    assert stats.rate_ci(0, 0) == {"converted": 0, "enrolled": 0, "rate": None,
                                   "ci_low": None, "ci_high": None}


def test_difference_interval_matches_newcombe_method_10():
    # Newcombe (1998) "Interval estimation for the difference between independent
    # proportions", Stat Med 17:873, examples (a) and (b), method 10.
    a = stats.compare(48, 80, 56, 70)  # B − A = 56/70 − 48/80
    assert a["diff"] == pytest.approx(0.2, abs=1e-6)
    assert (a["ci_low"], a["ci_high"]) == pytest.approx((0.0524, 0.3339), abs=6e-5)
    b = stats.compare(3, 10, 9, 10)
    assert (b["ci_low"], b["ci_high"]) == pytest.approx((0.1705, 0.8090), abs=6e-5)


def test_two_proportion_z_test_by_hand_and_equal_to_chi_square():
    r = stats.compare(48, 80, 56, 70)
    pooled = 104 / 150
    z = 0.2 / math.sqrt(pooled * (1 - pooled) * (1 / 70 + 1 / 80))
    assert r["z"] == pytest.approx(z, abs=1e-6) and z == pytest.approx(2.6502, abs=1e-4)
    assert r["p_value"] == pytest.approx(2 * norm.sf(z), abs=1e-8)
    chi2, p, _, _ = chi2_contingency([[56, 14], [48, 32]], correction=False)
    assert chi2 == pytest.approx(z * z) and r["p_value"] == pytest.approx(p, abs=1e-8)
    assert r["p_value"] == pytest.approx(0.00805, abs=1e-5)


def test_test_is_undefined_when_nobody_or_everybody_converted():
    assert stats.compare(0, 50, 0, 60)["p_value"] is None
    assert stats.compare(50, 50, 60, 60)["p_value"] is None
    assert stats.compare(0, 0, 3, 10)["diff"] is None


def test_relative_lift_katz_log_interval_by_hand():
    r = stats.relative_lift(56, 70, 48, 80)
    ratio = (56 / 70) / (48 / 80)
    se = math.sqrt(1 / 56 - 1 / 70 + 1 / 48 - 1 / 80)
    z = norm.ppf(0.975)
    assert r["lift"] == pytest.approx(ratio - 1, abs=1e-6)
    assert r["ci_low"] == pytest.approx(math.exp(math.log(ratio) - z * se) - 1, abs=1e-6)
    assert r["ci_high"] == pytest.approx(math.exp(math.log(ratio) + z * se) - 1, abs=1e-6)


def test_relative_lift_over_a_holdout_with_no_conversions_is_undefined():
    assert stats.relative_lift(5, 100, 0, 20) == {"lift": None, "ci_low": None,
                                                  "ci_high": None}


def test_sample_size_matches_cohen_and_the_normal_formulas():
    # Cohen (1988), Table 6.4.1: h = 0.20, two-sided α = .05, power .80 → n = 392 per group.
    from statsmodels.stats.power import NormalIndPower
    assert NormalIndPower().solve_power(effect_size=0.2, alpha=0.05, power=0.8) == \
        pytest.approx(392.4, abs=0.1)
    # var(2·asin√p̂) = 1/n, so two groups need n = 2·((z_α/2 + z_β) / h)² each
    z = norm.ppf(0.975) + norm.ppf(0.8)
    h = 2 * math.asin(math.sqrt(0.15)) - 2 * math.asin(math.sqrt(0.10))
    assert stats.sample_size_per_group(0.10, 0.15) == math.ceil(2 * (z / h) ** 2) == 681
    # …within 1% of the classic (Fleiss) formula on the raw proportions: 685.6
    pbar = 0.125
    fleiss = (norm.ppf(0.975) * math.sqrt(2 * pbar * (1 - pbar)) + norm.ppf(0.8)
              * math.sqrt(0.10 * 0.90 + 0.15 * 0.85)) ** 2 / 0.05 ** 2
    assert fleiss == pytest.approx(685.6, abs=0.1)
    assert stats.sample_size_per_group(0.10, 0.15) == pytest.approx(fleiss, rel=0.01)
    assert stats.sample_size_per_group(0.15, 0.10) == 681  # symmetric
    assert stats.sample_size_per_group(0.2, 0.2) is None


def test_sample_size_for_an_all_or_nothing_split_is_a_number_not_a_crash():
    # statsmodels' solver gives up (NaN) on h = π; the same equation in closed form answers
    z = norm.ppf(0.975) + norm.ppf(0.8)
    assert stats.sample_size_per_group(1.0, 0.0) == max(math.ceil(2 * (z / math.pi) ** 2), 2)
    assert stats.sample_size_per_group(0.0, 1.0) == 2


def test_holm_adjustment_by_hand():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([None, 0.02]) == [None, pytest.approx(0.02)]


def test_percentiles_use_linear_interpolation():
    assert percentiles([float(i) for i in range(1, 11)]) == {"median": 5.5, "p90": 9.1}
    assert percentiles([]) == {"median": None, "p90": None}
    assert percentiles([3.0]) == {"median": 3.0, "p90": 3.0}


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50))
def test_percentiles_agree_with_numpy(values):
    expected = np.percentile(np.asarray(values), [50, 90])
    got = percentiles(values)
    assert got["median"] == pytest.approx(round(expected[0], 4), abs=1e-3)
    assert got["p90"] == pytest.approx(round(expected[1], 4), abs=1e-3)


def test_verdict_when_b_wins():
    cmp = stats.compare(48, 80, 56, 70)
    v = stats.verdict("A", "B", cmp, 80, 70, 48, 56)
    assert v["significant"] and v["winner"] == "B"
    assert v["text"] == "B beats A: +20.0 pts, p=0.008"


def test_verdict_when_a_wins_names_a():
    cmp = stats.compare(56, 70, 48, 80)
    assert stats.verdict("A", "B", cmp, 70, 80, 56, 48)["text"] == \
        "A beats B: +20.0 pts, p=0.008"


def test_verdict_not_yet_significant_says_how_many_more():
    cmp = stats.compare(100, 1000, 115, 1000)  # 10% vs 11.5%
    v = stats.verdict("A", "B", cmp, 1000, 1000, 100, 115)
    needed = stats.sample_size_per_group(0.10, 0.115)
    h = 2 * math.asin(math.sqrt(0.115)) - 2 * math.asin(math.sqrt(0.10))
    assert needed == math.ceil(2 * ((norm.ppf(0.975) + norm.ppf(0.8)) / h) ** 2)
    assert not v["significant"] and v["more_per_variant"] == needed - 1000
    assert v["text"] == (f"not yet significant (B 115/1000 vs A 100/1000: +1.5 pts, p={cmp['p_value']:.3f}): "
                         f"need about {needed - 1000:,} more customers per variant for "
                         f"80% power")


def test_verdict_with_no_conversions_anywhere():
    """Issue 27 (10): the variants named, in words ("B: 0/10 vs A 0/10")."""
    cmp = stats.compare(0, 10, 0, 10)
    assert stats.verdict("control", "sms_first", cmp, 10, 12, 0, 0)["text"] == \
        "sms_first: 0/12 vs control 0/10 converted — too few conversions to tell a " \
        "difference yet"
