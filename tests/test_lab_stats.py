import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from golflab.lab.stats import (
    compare,
    mean_ci,
    paired,
    seeds_needed,
    sign_flip_p,
    verdict,
    want_more_seeds,
    welch,
)

A = [1.281, 1.279, 1.284, 1.277, 1.280]
B = [1.290, 1.286, 1.293, 1.285, 1.291, 1.288]


def test_welch_matches_the_formula():
    a, b = np.array(A), np.array(B)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    delta, p, se = welch(A, B, one_sided=True)
    assert delta == pytest.approx(a.mean() - b.mean())
    assert se == pytest.approx(math.sqrt(va + vb))
    assert p == pytest.approx(sps.t.cdf(t, df))
    _, p2, _ = welch(A, B, one_sided=False)
    assert p2 == pytest.approx(2 * sps.t.cdf(-abs(t), df))


def test_paired_matches_the_formula():
    a, b = A, B[:5]
    d = np.array(a) - np.array(b)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    mean, p, _ = paired(a, b, one_sided=True)
    assert mean == pytest.approx(d.mean())
    assert p == pytest.approx(sps.t.cdf(t, len(d) - 1))


def test_sign_flip_exact_and_sampled():
    d = [-0.01, -0.02, 0.005, -0.015, -0.008]
    means = [np.mean([s * x for s, x in zip(signs, d, strict=True)])
             for signs in itertools.product((1, -1), repeat=len(d))]
    obs = np.mean(d)
    assert sign_flip_p(d) == pytest.approx(np.mean([m <= obs + 1e-15 for m in means]))
    assert sign_flip_p(d, one_sided=False) == pytest.approx(np.mean([abs(m) >= abs(obs) - 1e-15 for m in means]))
    assert sign_flip_p([-1.0, -1.0]) == 0.25  # the smallest exact p with two pairs
    rng = np.random.default_rng(1)
    big = list(rng.normal(-0.5, 1.0, 30))  # n > 16: sampled with a fixed RNG, so repeatable
    p = sign_flip_p(big)
    assert p == sign_flip_p(big) and 0 < p < 0.05


def test_seeds_needed_normal_approximation():
    z = sps.norm.ppf(0.95) + sps.norm.ppf(0.8)
    assert seeds_needed(2 * 0.01**2, 0.01, 0.05, True) == pytest.approx(2 * z**2)
    assert seeds_needed(1.0, 0.0, 0.05, True) == math.inf
    assert seeds_needed(1.0, 0.1, 0.05, False) > seeds_needed(1.0, 0.1, 0.05, True)


def test_verdict_rule():
    assert verdict(0.02, 0.01, 0.03, 0.05, 0.0) == "win"
    assert verdict(0.02, 0.01, 0.03, 0.05, 0.03) == "inconclusive"  # significant but below min_effect, ucb above
    assert verdict(0.01, 0.01, 0.02, 0.05, 0.03) == "loss"  # confidently smaller than min_effect
    assert verdict(-0.02, 0.99, -0.01, 0.05, 0.0) == "loss"  # confidently worse
    assert verdict(0.001, 0.3, 0.02, 0.05, 0.0) == "inconclusive"


def test_compare_uses_paired_when_seeds_are_shared():
    base = {1: 1.30, 2: 1.32, 3: 1.29}
    arm = {1: 1.29, 2: 1.31, 3: 1.28}  # exactly 0.01 better on every seed, large spread across seeds
    c = compare(arm, base)
    assert c.test == "paired" and c.n_pairs == 3 and c.verdict == "win"
    unpaired = compare({11: 1.29, 12: 1.31, 13: 1.28}, base)
    assert unpaired.test == "welch" and unpaired.p_paired is None and unpaired.verdict == "inconclusive"
    assert compare({1: 1.2}, base).verdict == "inconclusive" and compare({1: 1.2}, base).test == ""


def test_mean_ci():
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert m - lo == pytest.approx(hi - m)
    assert m == 2.0 and hi - m == pytest.approx(sps.t.ppf(0.975, 2) * 1.0 / math.sqrt(3))


def test_sequential_rule():
    rule = {"alpha": 0.05, "min_effect": 0.0, "one_sided": True}
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, 6)
    # a real but noisy effect: inconclusive at 2 seeds, few seeds would settle it -> one more seed
    base = {s: 1.30 + noise[s] for s in range(2)}
    arm = {s: 1.30 - 0.01 + noise[s] + (0.006 if s else -0.006) for s in range(2)}
    c = compare(arm, base, **rule)
    assert c.verdict == "inconclusive"
    assert want_more_seeds(c, 2, 6, **rule)
    assert not want_more_seeds(c, 6, 6, **rule)  # at max
    # no effect at all: more seeds cannot make it a win, and only a huge n could show it is no better
    flat = {s: 1.30 + noise[s] + (0.01 if s % 2 else -0.01) for s in range(3)}
    c = compare(flat, {s: 1.30 + noise[s] for s in range(3)}, **rule)
    assert c.verdict == "inconclusive" and not want_more_seeds(c, 3, 6, **rule)
    # a decided arm never gets more seeds; missing data always does
    assert not want_more_seeds(compare({1: 1.2, 2: 1.2}, {1: 1.3, 2: 1.31}, **rule), 2, 6, **rule)
    assert want_more_seeds(compare({1: 1.2}, {1: 1.3, 2: 1.31}, **rule), 2, 6, **rule)


def _seeds_to_verdict(arm_all: np.ndarray, base_all: np.ndarray, paired_seeds: bool, max_n: int = 12) -> int:
    for n in range(2, max_n + 1):
        base = {s: base_all[s] for s in range(n)}
        arm = {(s if paired_seeds else 100 + s): arm_all[s] for s in range(n)}
        c = compare(arm, base)
        assert c.test == ("paired" if paired_seeds else "welch")
        if c.verdict == "win":
            return n
    return max_n + 1


def test_paired_reaches_a_verdict_with_fewer_seeds_than_welch():
    """Shared seed noise (data order, init) dominates: pairing removes it, Welch cannot."""
    paired_n, welch_n = [], []
    for trial in range(8):
        rng = np.random.default_rng(trial)
        shared = rng.normal(0, 0.02, 12)  # seed effect common to both arms
        base = 1.30 + shared + rng.normal(0, 0.002, 12)
        arm = 1.30 - 0.01 + shared + rng.normal(0, 0.002, 12)
        paired_n.append(_seeds_to_verdict(arm, base, True))
        welch_n.append(_seeds_to_verdict(arm, base, False))
    assert all(p <= w for p, w in zip(paired_n, welch_n, strict=True))
    assert np.mean(paired_n) < np.mean(welch_n) - 2
