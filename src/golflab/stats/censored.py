"""Rank tests for time_to_target, where +inf marks a run that missed the target within the budget.

Every run is censored at the same budget, so a miss is only known to be slower than every run that
reached the target: the misses are tied at the top. Unpaired, Gehan's (1965) generalized Wilcoxon
statistic is then the Mann-Whitney rank sum with the misses tied at the top rank; paired, the
Wilcoxon signed-rank statistic of the per-seed differences, a miss against a hit being the largest
difference and two misses a tie (0). Both p values are exact permutation p values (sign flips /
exchanges, enumerated or seeded-sampled beyond tests.EXACT_MAX). The margin m (H0: improvement <= m)
shifts the arm's finite values up by m first; a miss stays a miss (the shifted hit is assumed to stay
within the budget). The misses are never dropped.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from golflab.stats.tests import Result, _signs, _subsets


def gehan(arm: np.ndarray, ref: np.ndarray, m: float) -> Result:
    """Unpaired: arm (+m) against ref, lower is better; p_win small when the arm's ranks are low."""
    a = np.where(np.isfinite(arm), arm + m, np.inf)
    pooled = np.concatenate([a, ref])
    ranks = rankdata(pooled)  # mid-ranks; the +inf misses tie at the top
    k = len(a)
    idx = _subsets(len(pooled), k)
    sums = ranks[idx].sum(axis=1)
    obs = ranks[:k].sum()
    tol = 1e-9
    imp = _median_gap(ref, arm)
    return Result("gehan", float(np.mean(sums <= obs + tol)), float(np.mean(sums >= obs - tol)), imp, None, None)


def signed_rank(e: np.ndarray, m: float) -> Result:
    """Paired (or one-sample): e = per-seed improvements (ref - arm, +-inf for a hit against a miss,
    0 for two misses); Wilcoxon signed ranks of e - m, zeros kept (Pratt), exact sign flips."""
    y = e - m  # +-inf stay +-inf
    ranks = rankdata(np.abs(y))
    signed = np.sign(y) * ranks
    sums = _signs(len(y)) @ signed
    obs = float(signed.sum())
    tol = 1e-9
    with np.errstate(invalid="ignore"):  # the median of a +inf and a -inf gap is undefined
        med = float(np.median(e))
    imp = None if np.isnan(med) else med
    return Result("signed-rank", float(np.mean(sums >= obs - tol)), float(np.mean(sums <= obs + tol)),
                  imp, None, None)


def paired_gaps(arm: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """ref - arm per seed with misses: a miss against a hit is -+inf, two misses 0."""
    both = np.isinf(arm) & np.isinf(ref)
    with np.errstate(invalid="ignore"):
        e = ref - arm
    return np.where(both, 0.0, e)


def _median_gap(ref: np.ndarray, arm: np.ndarray) -> float | None:
    with np.errstate(invalid="ignore"):
        g = float(np.median(ref) - np.median(arm))
    return None if np.isnan(g) else g
