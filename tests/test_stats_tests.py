"""golflab.stats: p values against scipy, the issue's examples, degenerate data, censoring, Rule tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from golflab.errors import ConfigError
from golflab.stats import Design, Rule, judge, margin_test
from golflab.stats.tests import resolution

ARM = {1: 1.1940, 2: 1.2010, 3: 1.1930, 4: 1.1966}
BASE = {1: 1.2000, 2: 1.2050, 3: 1.1980, 4: 1.2020}


def _vals(d: dict) -> list[float]:
    return [d[k] for k in sorted(d)]


def test_issue_example_min_effect_is_the_null():
    look = judge(Rule(alpha=0.01, min_effect=0.005), ARM, BASE)
    assert look.verdict != "win"
    assert look.test == "paired t"
    assert look.lcb == pytest.approx(0.0032, abs=5e-5)  # the issue's 99% lower bound
    # and without the margin the same data do win at 1%
    assert judge(Rule(alpha=0.01), ARM, BASE).verdict == "win"


@pytest.mark.parametrize("m", [0.0, 0.002, 0.005])
def test_paired_p_equals_scipy(m):
    a, b = np.array(_vals(ARM)), np.array(_vals(BASE))
    look = judge(Rule(min_effect=m), ARM, BASE)
    ref = sps.ttest_rel(a + m, b, alternative="less")
    assert look.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert look.delta == pytest.approx(a.mean() - b.mean())
    lcb = -(a - b).mean() - sps.t.ppf(0.95, 3) * (a - b).std(ddof=1) / 2
    assert look.lcb == pytest.approx(lcb, rel=1e-10)


@pytest.mark.parametrize("m", [0.0, 0.003])
def test_welch_p_equals_scipy(m):
    arm = {1: 1.1940, 2: 1.2010, 3: 1.1930}
    base = {11: 1.2000, 12: 1.2050, 13: 1.1980, 14: 1.2020, 15: 1.1995}
    look = judge(Rule(min_effect=m), arm, base)
    assert look.test == "welch t" and look.n_pairs == 0
    ref = sps.ttest_ind(np.array(_vals(arm)) + m, _vals(base), equal_var=False, alternative="less")
    assert look.p == pytest.approx(ref.pvalue, rel=1e-10)
    # forcing Welch on paired seeds gives scipy's Welch too
    forced = judge(Rule(test="welch"), ARM, BASE)
    assert forced.test == "welch t"
    assert forced.p == pytest.approx(sps.ttest_ind(_vals(ARM), _vals(BASE), equal_var=False,
                                                   alternative="less").pvalue, rel=1e-10)


def test_one_sample_target_p_equals_scipy():
    losses = [3.2781, 3.2803, 3.2767, 3.2799, 3.2794, 3.2767, 3.2767, 3.2780]
    look = judge(Rule(target=3.28), dict(enumerate(losses)))
    assert look.test == "one-sample t" and look.verdict == "win"
    assert look.p == pytest.approx(sps.ttest_1samp(losses, 3.28, alternative="less").pvalue, rel=1e-10)
    assert look.delta == pytest.approx(np.mean(losses) - 3.28)
    m = 0.0005
    look = judge(Rule(target=3.28, min_effect=m), dict(enumerate(losses)))
    assert look.p == pytest.approx(sps.ttest_1samp(losses, 3.28 - m, alternative="less").pvalue, rel=1e-10)


def test_reference_and_margin_test():
    old = [1.2244, 1.2262, 1.2251]
    new = [1.2170, 1.2182, 1.2175, 1.2188]
    look = margin_test(new, old, margin=0.005, alpha=0.01)
    ref = sps.ttest_ind(np.array(new) + 0.005, old, equal_var=False, alternative="less")
    assert look.test == "welch t"
    assert look.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert look.verdict == ("win" if ref.pvalue <= 0.01 else "inconclusive")
    # the same through a rule with reference values: no baseline arm needed
    rule = Rule(alpha=0.01, min_effect=0.005, reference=tuple(old))
    assert judge(rule, dict(enumerate(new))).p == pytest.approx(look.p)
    # an improvement of 0.004 is not one of 0.005, however certain
    worse = [x + 0.004 for x in old]
    assert margin_test([x - 0.004 for x in worse], worse, 0.005, 0.01).verdict != "win"


def test_identical_paired_differences_are_not_a_win_at_n2():
    arm, base = {1: 1.2730, 2: 1.2810}, {1: 1.2731, 2: 1.2811}
    look = judge(Rule(), arm, base)
    assert look.verdict != "win"
    assert look.test == "sign-flip" and look.p == 0.25
    assert Design(Rule(), 2, 6).look(arm, base).verdict == "continue"
    # at 5 identical differences the exact sign-flip p is 1/32 < 0.05: now the data do say something
    arm5 = {k: 1.27 + k / 1000 for k in range(5)}
    base5 = {k: v + 0.0001 for k, v in arm5.items()}
    five = judge(Rule(), {k: round(v, 4) for k, v in arm5.items()}, {k: round(v, 4) for k, v in base5.items()})
    assert five.test == "sign-flip" and five.p == pytest.approx(1 / 32) and five.verdict == "win"


def test_zero_variance_target_and_welch():
    look = judge(Rule(target=3.28), {1: 3.2790, 2: 3.2790, 3: 3.2790})
    assert look.test == "sign-flip" and look.p == pytest.approx(1 / 8) and look.verdict != "win"
    w = judge(Rule(test="welch"), {1: 1.2, 2: 1.2}, {3: 1.3, 4: 1.3})
    assert w.test == "permutation" and w.p == pytest.approx(1 / 6) and w.verdict != "win"
    # an explicit resolution: spread below it counts as none
    r = Rule(resolution=0.001)
    assert judge(r, {1: 1.2000, 2: 1.2104}, {1: 1.2010, 2: 1.2115}).test == "sign-flip"


def test_resolution_inference():
    assert resolution(np.array([1.2730, 1.2811])) == pytest.approx(1e-4)
    assert resolution(np.array([105.369, 105.595])) == pytest.approx(1e-3)
    assert resolution(np.array([1.0, 2.0])) == 1.0
    assert resolution(np.array([math.pi, math.e])) == 0.0


def test_ties_and_n2_t_test_stays_modest():
    # n = 2 pairs with some spread: the t test with 1 df; at the first look of a 2..6 design the
    # O'Brien-Fleming boundary (~0.0007) is far below any p two noisy seeds give
    look = Design(Rule(), 2, 6).look({1: 1.2001, 2: 1.2102}, {1: 1.2050, 2: 1.2163})
    assert look.test == "paired t" and look.verdict == "continue"
    assert look.boundary == pytest.approx(0.000687, rel=1e-2)


def test_loss_means_confidently_below_min_effect():
    arm = {k: 1.2050 + 0.0003 * (k % 3) for k in range(6)}
    base = {k: 1.2000 + 0.0002 * (k % 2) for k in range(6)}
    look = judge(Rule(min_effect=0.0), arm, base)
    assert look.verdict == "loss" and look.ucb < 0
    # an improvement of 0.001 that is surely there but surely below min_effect 0.005: a loss too
    arm2 = {k: v - 0.006 for k, v in arm.items()}
    l2 = judge(Rule(min_effect=0.005), arm2, base)
    assert l2.verdict == "loss" and 0 < -l2.delta < 0.005 and l2.ucb < 0.005


def test_censored_time_to_target_keeps_the_misses():
    inf = math.inf
    # unpaired: the arm reaches the target fast when it does, but misses half the time
    arm = {1: 90.0, 2: inf, 3: 91.0, 4: inf, 5: 89.0, 6: inf}
    base = {11: 100.0, 12: 101.0, 13: 99.0, 14: 100.5, 15: 100.2, 16: 99.8}
    look = judge(Rule(), arm, base)
    assert look.test == "gehan" and look.censored_arm == 3
    assert look.verdict != "win"  # dropping the misses would make this a clear win
    assert judge(Rule(), {k: v for k, v in arm.items() if v < inf}, base).verdict == "win"
    # Gehan with the misses tied at the top is Mann-Whitney: the exact p agrees with scipy's
    mw = sps.mannwhitneyu(_vals(arm), _vals(base), alternative="less", method="exact")
    assert look.p == pytest.approx(mw.pvalue, abs=2e-3)
    # paired: a miss against a hit is the largest difference; two misses tie
    parm = {1: 90.0, 2: inf, 3: 91.0, 4: 92.0, 5: 89.0, 6: 88.0}
    pbase = {1: 100.0, 2: inf, 3: 99.0, 4: inf, 5: 100.2, 6: 99.8}
    p = judge(Rule(), parm, pbase)
    assert p.test == "signed-rank" and p.n_pairs == 6
    assert p.p == pytest.approx(1 / 32)  # 5 positive differences, 1 tie: the best possible with 5
    assert p.verdict == "win"
    # all misses on both sides: no evidence
    assert judge(Rule(), {1: inf, 2: inf}, {1: inf, 2: inf}).verdict != "win"


def test_rule_from_table():
    r = Rule.from_table({"alpha": 0.01, "min_effect": 0.005, "spending": "pocock", "futility": False,
                         "reference": [1.22, 1.23]}, where="plan.rule")
    assert r.alpha == 0.01 and r.reference == (1.22, 1.23) and r.spending == "pocock"
    assert Rule.from_table({}, target=3.28).target == 3.28
    assert Rule.from_table({"confirm_on_test": True}, ignore=["confirm_on_test"]) == Rule()
    bad = [({"alpah": 0.05}, "rule.alpah: unknown key"), ({"alpha": 2}, "rule.alpha: must be in"),
           ({"test": "z"}, "rule.test: 'z' is not allowed; expected one of 'auto', 'paired', 'welch'"),
           ({"spending": "x"}, "'obf', 'pocock', 'none'"), ({"one_sided": 1}, "rule.one_sided: expected true"),
           ({"min_effect": "0.1"}, "rule.min_effect: expected a finite number"),
           ({"reference": [1.0], "target": 3.0}, "rule.reference: give reference values or a target"),
           ({"reference": "x"}, "rule.reference: expected a list")]
    for table, msg in bad:
        with pytest.raises(ConfigError, match=None) as e:
            Rule.from_table(table)
        assert msg in str(e.value), (table, str(e.value))


def test_two_sided_splits_alpha_and_look_dict():
    look = judge(Rule(one_sided=False), ARM, BASE)
    assert look.boundary == pytest.approx(0.025)
    d = look.to_dict()
    assert set(d) >= {"n", "verdict", "why", "test", "p", "delta", "lcb", "ucb", "mean_arm", "sd_arm",
                      "mean_ref", "sd_ref", "n_pairs"}


def test_design_interface():
    d = Design(Rule(), 2, 6)
    assert not d.fixed() and Design(Rule(), 3, 3).fixed()
    assert d.look({1: 1.2}, {1: 1.3}).verdict == "continue"
    assert Design(Rule(), 1, 1).look({1: 1.2}, {1: 1.3}).verdict == "inconclusive"
    # n >= max seeds: never continue
    arm = {k: 1.2 + 0.001 * ((k * 7) % 5) for k in range(6)}
    base = {k: 1.2 + 0.001 * ((k * 3) % 5) for k in range(6)}
    assert d.look(arm, base).verdict in ("win", "loss", "inconclusive")
    # the budget ran out at 4 seeds: last=True spends what is left, so the boundary is looser
    a4, b4 = {k: arm[k] for k in range(4)}, {k: base[k] for k in range(4)}
    assert d.look(a4, b4, last=True).boundary > d.look(a4, b4).boundary
    with pytest.raises(ValueError):
        d.look({1: math.nan, 2: 1.0}, {1: 1.0, 2: 1.0})
    # judge is final even when fewer seeds are shared than the arm has runs
    j = judge(Rule(), {1: 1.20, 2: 1.21, 3: 1.22}, {1: 1.21, 2: 1.2150})
    assert j.verdict != "continue" and j.n_pairs == 2 and j.boundary == 0.05
    # a design starting at 3 seeds waits at 2
    assert Design(Rule(), 3, 6).look({1: 1.20, 2: 1.21}, {1: 1.21, 2: 1.2150}).verdict == "continue"
