"""Group-sequential boundaries: Lan-DeMets alpha spending over the looks n = lo..hi seeds per arm.

At look j (n_j seeds) an arm wins when its nominal one-sided p is <= pi_j; the pi_j are chosen so that,
under H0 at its boundary (improvement = m), the probability of having crossed by look j is exactly the
spent alpha a(t_j), t_j = n_j / hi (information grows with the seeds). Spending functions (Lan & DeMets
1983; Jennison & Turnbull 2000, ch. 7):
  obf    a(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t))    (O'Brien-Fleming-like: almost nothing early)
  pocock a(t) = alpha ln(1 + (e - 1) t)
  none   a(t) = 0 before the last look, alpha at it   (only the last look tests: a fixed-n test)

The t statistic of n iid normal values at the null is pivotal: its joint law over the looks does not
depend on sigma. So the joint law of the nominal p values is found once by seeded Monte Carlo of the
one-sample t statistic of cumulative N(0, 1) values and cached; the boundaries are exact, up to Monte
Carlo error (about 1% of alpha), for the paired and one-sample t tests. The first look (or the first
that spends anything) is exact: a t test's p is uniform there. A look whose increment is too small to
estimate (< MIN_HITS paths) gets pi_j = its increment, which by Bonferroni spends at most that.
Welch, permutation and rank tests use the same nominal boundaries (approximate: see docs/verdicts.md).
The loss boundary (H0': improvement >= m) is the mirror image with the same pi_j (the law is symmetric).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special

N_PATHS = 200_000
MIN_HITS = 50
SEED = 20260101


def spent(spending: str, alpha: float, t: np.ndarray) -> np.ndarray:
    """Cumulative alpha a(t) spent by information fractions t (a(1) = alpha)."""
    t = np.asarray(t, float)
    if spending == "obf":
        out = 2 * special.ndtr(special.ndtri(alpha / 2) / np.sqrt(t))
    elif spending == "pocock":
        out = alpha * np.log1p((math.e - 1) * t)
    elif spending == "none":
        out = np.zeros_like(t)
    else:
        raise ValueError(f"unknown spending {spending!r}")
    return np.where(t >= 1, alpha, np.minimum(out, alpha))


@lru_cache(maxsize=2)  # the boundaries are cached; this is only their input
def null_p(lo: int, hi: int) -> np.ndarray:
    """N_PATHS x (hi - lo + 1) one-sided t-test p values of cumulative N(0, 1) values (seeded)."""
    x = np.random.default_rng(SEED).standard_normal((N_PATHS, hi))
    ns = np.arange(lo, hi + 1)
    s, s2 = np.cumsum(x, axis=1)[:, ns - 1], np.cumsum(x * x, axis=1)[:, ns - 1]
    mean = s / ns
    var = (s2 - ns * mean**2) / (ns - 1)
    return special.stdtr(ns - 1, -mean / np.sqrt(var / ns))


@lru_cache(maxsize=256)
def boundaries(lo: int, hi: int, alpha: float, spending: str, stop: int | None = None) -> tuple[float, ...]:
    """Nominal p boundaries pi_lo..pi_stop (lo >= 2). `stop` (default hi) ends the design early at that
    n, spending all that is left there (Lan-DeMets: the earlier boundaries do not change)."""
    stop = hi if stop is None else stop
    ns = np.arange(lo, stop + 1)
    cum = spent(spending, alpha, ns / hi)
    cum[-1] = alpha
    p = null_p(lo, hi) if len(ns) > 1 else None
    alive = None
    out, done = [], 0.0
    for j in range(len(ns)):
        inc = float(cum[j] - done)
        hits = round(inc * N_PATHS)
        if done == 0 or hits < MIN_HITS:
            pi = inc  # exact while nothing is spent (p is uniform); Bonferroni (conservative) when tiny
            done += inc
        else:
            pi = float(np.partition(p[alive, j], hits - 1)[hits - 1])
            done += float(np.mean(alive & (p[:, j] <= pi)))
        out.append(pi)
        if p is not None:
            alive = p[:, j] > pi if alive is None else alive & (p[:, j] > pi)
    return tuple(out)
