"""Sequential seeding keeps its error rate: seeded simulations through Design.look, as the engine drives it.

3000 experiments per setting: the standard error at 5% is 0.4%, so 5% and 7.5% are 6 SE apart.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from golflab.stats import Design, Rule
from golflab.stats.boundaries import boundaries, null_p, spent
from golflab.stats.simulate import run_design, simulate_design, synthetic_values

N = 3000
SIGMA = 0.005


def _bound(alpha: float, n: int = N) -> float:
    return alpha + 2 * math.sqrt(alpha * (1 - alpha) / n)


@pytest.mark.parametrize("alpha", [0.05, 0.01])
@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_false_win_rate_no_effect(alpha, rho):
    # a seed per setting: with the same seed the paired decisions would not depend on rho at all
    r = simulate_design(Rule(alpha=alpha), 2, 6, effect=0.0, sigma=SIGMA, rho=rho, n_sims=N,
                        seed=11 + int(10 * rho))
    assert r["false_win_rate"] <= _bound(alpha), r
    assert r["max_seeds"] == 6 and 2 <= r["mean_seeds"] < 6


@pytest.mark.parametrize("alpha", [0.05, 0.01])
@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_win_rate_at_min_effect(alpha, rho):
    # the true improvement equals min_effect: a "win" would be a false claim that it exceeds it
    rule = Rule(alpha=alpha, min_effect=0.005)
    r = simulate_design(rule, 2, 6, effect=0.005, sigma=SIGMA, rho=rho, n_sims=N, seed=12 + int(10 * rho))
    assert r["false_win_rate"] <= _bound(alpha), r


def test_rho_does_not_matter_for_the_paired_null():
    # the paired t statistic is pivotal: with the same standardized noise the decisions are identical
    a = simulate_design(Rule(), 2, 6, 0.0, SIGMA, 0.0, 300, seed=3)
    b = simulate_design(Rule(), 2, 6, 0.0, SIGMA, 0.8, 300, seed=3)
    assert a == b


@pytest.mark.parametrize("rule,min_seeds,max_seeds", [
    (Rule(test="welch"), 2, 6),                  # unpaired seeds (crn = false)
    (Rule(spending="pocock"), 2, 6),
    (Rule(spending="none", futility=False), 2, 6),
    (Rule(alpha=0.05), 2, 10),
    (Rule(alpha=0.05), 2, 2),                    # pgolf-ablations: fixed 2 seeds
    (Rule(alpha=0.05), 4, 4),
])
def test_false_win_rate_other_designs(rule, min_seeds, max_seeds):
    # rho 0: unpaired seeds are independent (Welch on correlated pairs would be needlessly conservative)
    r = simulate_design(rule, min_seeds, max_seeds, 0.0, SIGMA, 0.0, n_sims=N, seed=13)
    assert r["false_win_rate"] <= _bound(rule.alpha), r


def test_target_and_reference_rules_keep_alpha():
    # speedrun: mean loss < 3.28 over independent seeds, true mean exactly 3.28
    t = simulate_design(Rule(target=3.28), 2, 6, 0.0, 0.0015, 0.0, n_sims=N, seed=14)
    assert t["false_win_rate"] <= _bound(0.05), t
    # parameter golf: beat 3 reference scores by 0.005 at p < 0.01, true improvement exactly 0.005
    ref = Rule(alpha=0.01, min_effect=0.005, reference=(1.0, 1.0, 1.0))
    r = simulate_design(ref, 2, 6, 0.005, SIGMA, 0.0, n_sims=N, seed=15)
    assert r["false_win_rate"] <= _bound(0.01), r


def test_loss_rate_at_min_effect():
    # "loss" claims the improvement is below min_effect: at exactly min_effect that is wrong
    r = simulate_design(Rule(min_effect=0.005), 2, 6, 0.005, SIGMA, 0.5, n_sims=N, seed=16)
    assert r["loss_rate"] <= _bound(0.05), r


def test_censored_time_to_target_keeps_alpha():
    # time_to_target with misses: both arms miss the budget 30% of the time, no true difference
    rng = np.random.default_rng(17)
    design = Design(Rule(), 2, 6)
    wins = 0
    for _ in range(1000):
        arm, ref = synthetic_values(rng, 6, 0.0, 5.0, 0.5, level=100.0)
        arm = {k: (math.inf if v > 102.6 else v) for k, v in arm.items()}
        ref = {k: (math.inf if v > 102.6 else v) for k, v in ref.items()}
        wins += run_design(design, arm, ref).verdict == "win"
    assert wins / 1000 <= _bound(0.05, 1000)


def test_power_and_cost_at_two_sigma():
    # docs/verdicts.md's table: the default rule (alpha 0.05, seeds 2..6), effect 2 sigma
    hi = simulate_design(Rule(), 2, 6, 2 * SIGMA, SIGMA, 0.8, n_sims=1000, seed=18)
    lo = simulate_design(Rule(), 2, 6, 2 * SIGMA, SIGMA, 0.0, n_sims=1000, seed=19)
    assert hi["power"] > 0.97 and lo["power"] > 0.75, (hi, lo)


def test_simulate_is_fast():
    Design(Rule(), 2, 6)  # boundaries cached
    t = time.perf_counter()
    simulate_design(Rule(), 2, 6, 0.0, SIGMA, 0.5, n_sims=5000, seed=20)
    assert time.perf_counter() - t < 10


def test_boundaries_spend_alpha():
    for alpha, spending in [(0.05, "obf"), (0.01, "obf"), (0.05, "pocock")]:
        pi = np.array(boundaries(2, 6, alpha, spending))
        crossed = (null_p(2, 6) <= pi).any(axis=1).mean()
        assert crossed == pytest.approx(alpha, rel=0.03)
        assert pi[0] == pytest.approx(spent(spending, alpha, np.array([2 / 6]))[0])
    assert boundaries(2, 6, 0.05, "none")[-1] == 0.05 and boundaries(3, 3, 0.05, "obf") == (0.05,)
    # the O'Brien-Fleming-like first look at 2 of 6 seeds needs p < 0.0007
    assert boundaries(2, 6, 0.05, "obf")[0] < 0.001


def test_synthetic_values_have_the_asked_correlation_and_spread():
    rng = np.random.default_rng(21)
    arm, ref = synthetic_values(rng, 20_000, 0.01, SIGMA, 0.8)
    a, b = np.array(list(arm.values())), np.array(list(ref.values()))
    assert np.corrcoef(a, b)[0, 1] == pytest.approx(0.8, abs=0.01)
    assert a.std() == pytest.approx(SIGMA, rel=0.02) and (b - a).mean() == pytest.approx(0.01, abs=2e-4)
