"""Experiments that decide: a winner that takes over, a Thompson-sampling bandit, and a
global control group — the pure statistics, with no I/O. Enrollment, reports and the CLI
call these; they own storage, time and the conversion window.

Winner that takes over (winner.py, sequential.py)
-------------------------------------------------
*What test.* A mixture sequential probability ratio test (mSPRT; Johari, Pekelis & Walsh,
"Always valid inference", 2017 — what Optimizely's Stats Engine runs) on the difference of
the per-customer means of two arms: the conversion rate (Bernoulli, variance p(1−p)) or
revenue per customer (any distribution; normal approximation with the sample variance from
Σy and Σy²). The evidence Λ is the likelihood of the observed difference under "some effect,
drawn from N(0, τ²)" over its likelihood under "no effect"; p = min(1, 1/Λ).

*Why it stays valid under peeking.* Under "no effect" Λ is a (nonnegative) martingale, and
by Ville's inequality P(Λ ever reaches 1/α) ≤ α: the chance of EVER declaring a false winner,
however often one looks, is at most α = 1 − confidence. A fixed-horizon p-value makes the
promise for one look only; checked after every enrollment it crosses 0.05 sooner or later
in a third or more of experiments with no difference at all (tests/experiments prove both).
The interval reported is the matching confidence sequence {θ : Λ(θ) < 1/α}: valid at every
look at once. The test runs on customers whose conversion window has closed only — the
caller counts them (`ArmData`); an open window is a conversion that may still come.

*Several variants.* Every pair of arms is compared at α / m, m = K(K−1)/2 (Bonferroni: simple,
and valid for always-valid p-values under any dependence). An arm wins when it beats every
other arm: a variant must beat the control and the other variants; the control wins when it
beats every variant ("the new cascades only hurt"). Control + one variant: one test at α.

*Parameters.* τ (the mixing standard deviation) is in standard deviations of the metric per
customer: τ² = (0.1)² · pooled variance by default. It sets which effects are found fastest:
a 5 % → 8 % change is 0.12 sd. Simulated at 95 %, 5 % vs 8 %, equal split, checked after every
enrollment from 200 customers per arm (the winner is found within n customers per arm in
this share of 500 runs; A/A = false winners with 5 % in both arms up to 4,000 per arm):

    τ      A/A     n=1,000  2,000  2,500  3,000
    0.03   0.4 %     3 %     59 %   82 %   92 %
    0.05   1.4 %    25 %     82 %   91 %   97 %
    0.1    2.6 %    49 %     88 %   93 %   97 %     ← default
    0.2    3.2 %    49 %     86 %   92 %   96 %
    0.5    1.8 %    40 %     77 %   88 %   93 %

The naive fixed-horizon z-test on the same data and looks: 36 % false winners. The wrong arm
was never declared. The price of peeking freely is a larger sample than one planned look
needs (1,400 per arm for 90 % power here, statsmodels NormalIndPower) — but the mSPRT stops
early when the effect is larger than planned. `min_per_variant` (e.g. 200) keeps the
normal approximation honest and the decision off a handful of conversions (the A/A rate
stayed at 2.6 % with as few as 20 per arm). Revenue per customer (5 % buy, log-normal order
values around 50): A/A 2.2 %; 8 % buyers found within ≈ 5,000 per arm in 92 % of runs —
money is noisier than a yes/no, so the same lift needs about twice the customers.

*Caveats, said plainly.* The variance is estimated (plugged in), so validity is
asymptotic; the simulations above are the evidence that it holds at these sizes. `decide`
is stateless: it reports 1/Λ at the current counts; the caller stores the FIRST decision
with a winner and stops there (max_duration ends the test without declaring anything).
Continuing to count after a declaration and declaring again later is a new experiment.

Bandit (bandit.py)
------------------
Thompson sampling with Beta(1 + conversions, 1 + closed − conversions) posteriors: each
arm's share of new entrants is the probability it is the best, by seeded Monte Carlo
(deterministic: store the weights), lifted to at least `floor`. Simulated 5 % vs 8 %, floor
10 %, 100 closed windows per update: after 1,000 closed windows the better arm gets ≈ 82 %
of traffic on average (≥ 70 % asserted), ≈ 87 % after 2,000; the floor always holds.
`regret_saved` estimates the conversions gained against an equal split. A customer's arm is
fixed at entry; bandit arms are not a fair A/B comparison (the shares moved over time).

Global control and assignment (hashing.py)
------------------------------------------
HMAC-SHA256(salt, purpose ‖ customer id) → a uniform number in [0, 1): below `share` puts
the customer in the global control; `assign` lays the arms out by weight over [0, 1). Both
are stable across processes, machines and Python versions; a new salt reshuffles.
"""

from omnicascade.experiments.bandit import bandit_weights, posterior_means, regret_saved
from omnicascade.experiments.hashing import assign, in_global_control
from omnicascade.experiments.winner import ArmData, Comparison, Decision, decide

__all__ = ["ArmData", "Comparison", "Decision", "assign", "bandit_weights", "decide",
           "in_global_control", "posterior_means", "regret_saved"]
