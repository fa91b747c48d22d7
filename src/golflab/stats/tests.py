"""Fixed-n tests of an improvement against a null boundary m (H0: improvement <= m).

Lower metric is better; improvement = ref - arm (paired, Welch, reference) or target - arm (one-sample).
Every test returns both one-sided p values: p_win for H0: improvement <= m and p_loss for H0':
improvement >= m. The t tests use scipy.special directly (the scipy.stats front ends cost ~100 µs a
call, too slow for simulate_design); tests/test_stats_tests.py checks them against scipy.stats.

Degenerate data (docs/verdicts.md): when the spread the t statistic divides by is below the metric's
rounding resolution, the t statistic measures rounding, not noise; the exact permutation p (sign flips
of the paired differences, or exchanges between the two samples) replaces it. At n = 2 pairs its
smallest value is 1/4.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special

EXACT_MAX = 20_000  # enumerate permutations up to this many, else sample this many (seeded)


@dataclass(frozen=True)
class Result:
    test: str  # "paired t" | "welch t" | "one-sample t" | "sign-flip" | "permutation" | "gehan" | ...
    p_win: float
    p_loss: float
    improvement: float | None  # the estimate (mean difference; median difference for rank tests)
    se: float | None  # None for permutation and rank tests: no t-based bounds
    df: float | None


def resolution(values) -> float:
    """The decimal rounding step of the values (1e-4 for 1.2730, 1.2811), or 0 at full precision."""
    x = [v for v in values if math.isfinite(v)]
    for k in range(13):
        scale = 10.0**k
        # integers to 1e-6 at a scale where float noise (~1e-16 relative) stays far below that
        if all(abs(v * scale) < 1e9 and abs(v * scale - round(v * scale)) <= 1e-6 for v in x):
            return 10.0**-k if x else 0.0
    return 0.0


def spread_floor(values, res: float | None = None) -> float:
    """The spread below which a t statistic is not trusted: the rounding resolution of the raw values
    (`res` if given, else inferred), at least their float noise."""
    x = [abs(v) for v in values if math.isfinite(v)]
    r = resolution(values) if res is None else res
    return max(r, 1e-12 * max(x)) if x else r


def mean_sd(x) -> tuple[float, float]:
    """Mean and sample sd (ddof 1) in plain Python: numpy's overhead dominates at a few seeds."""
    n = len(x)
    mean = math.fsum(x) / n
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in x) / (n - 1)) if n > 1 else math.nan


def t_sf(t: float, df: float) -> float:
    """P(T_df >= t)."""
    return float(special.stdtr(df, -t))


def one_sample(e, m: float, floor: float = 0.0, name: str = "paired t") -> Result:
    """Test the mean of per-seed improvements e against m (paired: ref - arm; target: target - arm).

    floor: spread_floor of the raw values; at or below it the sign-flip p replaces the t test's."""
    n = len(e)
    mean, sd = mean_sd(e)
    if sd <= floor:
        p_win, p_loss = sign_flip(np.asarray(e, float) - m)
        return Result("sign-flip", p_win, p_loss, mean, None, None)
    se = sd / math.sqrt(n)
    t = (mean - m) / se
    return Result(name, t_sf(t, n - 1), t_sf(-t, n - 1), mean, se, n - 1)


def welch(arm, ref, m: float, floor: float = 0.0) -> Result:
    """Welch's t of improvement = mean(ref) - mean(arm) against m (Satterthwaite df)."""
    na, nb = len(arm), len(ref)
    (ma, sda), (mb, sdb) = mean_sd(arm), mean_sd(ref)
    imp = mb - ma
    if max(sda, sdb) <= floor:
        p_win, p_loss = permutation(np.asarray(arm, float) + m, np.asarray(ref, float))
        return Result("permutation", p_win, p_loss, imp, None, None)
    sa, sb = sda**2 / na, sdb**2 / nb
    se = math.sqrt(sa + sb)
    df = (sa + sb) ** 2 / (sa**2 / (na - 1) + sb**2 / (nb - 1))
    t = (imp - m) / se
    return Result("welch t", t_sf(t, df), t_sf(-t, df), imp, se, df)


@lru_cache(maxsize=32)
def _signs(n: int) -> np.ndarray:
    if 2**n <= EXACT_MAX:
        return np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    rng = np.random.default_rng(n)
    return np.vstack([np.ones(n), rng.choice((1.0, -1.0), size=(EXACT_MAX - 1, n))])


def sign_flip(y: np.ndarray) -> tuple[float, float]:
    """(P(sum >= observed), P(sum <= observed)) of sum(y) under random sign flips (H0: y symmetric at 0)."""
    sums = _signs(len(y)) @ y
    obs = float(y.sum())
    tol = 1e-9 * max(1e-12, float(np.abs(y).sum()))
    return float(np.mean(sums >= obs - tol)), float(np.mean(sums <= obs + tol))


def _subsets(n: int, k: int) -> np.ndarray:
    """Index sets of the first sample: all C(n, k) when few, else a seeded sample (observed one first)."""
    if math.comb(n, k) <= EXACT_MAX:
        return np.array(list(itertools.combinations(range(n), k)))
    rng = np.random.default_rng(n * 1000 + k)
    draws = np.argsort(rng.random((EXACT_MAX - 1, n)), axis=1)[:, :k]
    return np.vstack([np.arange(k)[None, :], draws])


def permutation(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample permutation p of mean(b) - mean(a): (P(stat >= obs), P(stat <= obs))."""
    pooled = np.concatenate([a, b])
    n, k = len(pooled), len(a)
    idx = _subsets(n, k)
    sum_a = pooled[idx].sum(axis=1)
    total = pooled.sum()
    stats = (total - sum_a) / (n - k) - sum_a / k
    obs = float(b.mean() - a.mean())
    tol = 1e-9 * max(1e-12, float(np.abs(pooled).max()))
    return float(np.mean(stats >= obs - tol)), float(np.mean(stats <= obs + tol))
