"""Statistics of an arm against its baseline: Welch, paired t, sign-flip permutation, power, verdict.

Convention: the metric is lower-is-better. Δ = mean(arm) - mean(baseline); the improvement is -Δ.
One-sided tests ask "is the arm lower?"; two-sided ones "does it differ?".

Verdict (decision rule, `alpha`, `min_effect`):
- win: p < alpha, the arm is better, and the improvement is >= min_effect;
- loss: the (1-alpha) upper confidence bound of the improvement is below min_effect, i.e. we are
  confident it does not improve by min_effect (with min_effect = 0: significantly worse);
- inconclusive otherwise. The paired test decides when the arms share >= 2 seeds, Welch otherwise.

Seeds needed (normal approximation, 80% power): per arm n = (z_a + z_0.8)^2 (σ_arm^2 + σ_base^2) / d^2
for Welch and n = (z_a + z_0.8)^2 σ_diff^2 / d^2 for the paired test, with z_a = z_{1-alpha}
(one-sided) or z_{1-alpha/2}, and d = min_effect (the "seeds needed" line) or the gap to settle.

Sequential rule: an inconclusive arm with n < max seeds gets one more seed only if more seeds could
still change its verdict: the seeds needed to settle the observed gap (the distance from the observed
improvement to 0 when it is at least min_effect, else to min_effect) at the observed spread are <= max.
With fewer than 2 values on a side nothing is known yet and another seed is always due.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

POWER = 0.8
PERM_EXACT_MAX = 16
PERM_SAMPLES = 20_000


@dataclass
class Comparison:
    n_arm: int
    n_base: int
    mean_arm: float | None
    mean_base: float | None
    sd_arm: float | None
    sd_base: float | None
    delta: float | None  # mean(arm) - mean(baseline)
    p_welch: float | None
    n_pairs: int
    delta_paired: float | None  # mean of per-seed differences
    sd_diff: float | None
    p_paired: float | None
    p_perm: float | None
    test: str  # "paired" or "welch" (the one the verdict used), "" if neither could run
    lcb: float | None  # confidence bounds of the improvement (-Δ) from the deciding test
    ucb: float | None
    verdict: str
    n_welch_needed: float | None  # seeds per arm for min_effect at 80% power
    n_paired_needed: float | None

    def to_dict(self) -> dict:
        return asdict(self)

    def deciding(self) -> tuple[float | None, float | None]:
        """(Δ, p) of the test the verdict used: paired where seeds are shared, else Welch."""
        return (self.delta_paired, self.p_paired) if self.test == "paired" else (self.delta, self.p_welch)


def _sd(x: np.ndarray) -> float | None:
    return float(np.std(x, ddof=1)) if len(x) >= 2 else None


def welch(arm: list[float], base: list[float], one_sided: bool = True) -> tuple[float, float, float]:
    """(Δ, p, standard error) of Welch's t-test; p is for 'arm lower' when one-sided."""
    a, b = np.asarray(arm, float), np.asarray(base, float)
    delta = float(a.mean() - b.mean())
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    if _exact(se, delta):
        return delta, _exact_p(delta, one_sided), se
    with warnings.catch_warnings():  # identical values on one side warn about precision; harmless here
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sps.ttest_ind(a, b, equal_var=False, alternative="less" if one_sided else "two-sided")
    return delta, float(res.pvalue), se


def welch_df(arm: list[float], base: list[float]) -> float:
    va, vb = np.var(arm, ddof=1) / len(arm), np.var(base, ddof=1) / len(base)
    den = va**2 / (len(arm) - 1) + vb**2 / (len(base) - 1)
    return float((va + vb) ** 2 / den) if den > 0 else float(len(arm) + len(base) - 2)


def paired(arm: list[float], base: list[float], one_sided: bool = True) -> tuple[float, float, float]:
    """(mean difference, p, standard error) of the paired t-test on arm[k] - base[k]."""
    d = np.asarray(arm, float) - np.asarray(base, float)
    mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))
    if _exact(se, mean):
        return mean, _exact_p(mean, one_sided), se
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sps.ttest_rel(arm, base, alternative="less" if one_sided else "two-sided")
    return mean, float(res.pvalue), se


def _exact(se: float, delta: float) -> bool:
    """No spread (to rounding): the t statistic is undefined, the difference is exact."""
    return se <= 1e-9 * max(1e-9, abs(delta))


def _exact_p(delta: float, one_sided: bool) -> float:
    if one_sided:
        return 0.0 if delta < 0 else 1.0
    return 0.0 if delta != 0 else 1.0


def sign_flip_p(diffs: list[float], one_sided: bool = True, seed: int = 0) -> float:
    """Permutation p of mean(diffs) under random sign flips: exact for n <= 16, sampled beyond."""
    d = np.asarray(diffs, float)
    n = len(d)
    obs = d.mean()
    if n <= PERM_EXACT_MAX:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        rng = np.random.default_rng(seed)
        signs = np.vstack([np.ones(n), rng.choice((1.0, -1.0), size=(PERM_SAMPLES - 1, n))])
    means = signs @ d / n
    tol = 1e-12 * max(1.0, abs(obs))
    hits = means <= obs + tol if one_sided else np.abs(means) >= abs(obs) - tol
    return float(hits.mean())


def z_alpha(alpha: float, one_sided: bool) -> float:
    return float(sps.norm.ppf(1 - alpha if one_sided else 1 - alpha / 2))


def seeds_needed(var_sum: float, effect: float, alpha: float, one_sided: bool, power: float = POWER) -> float:
    """Normal-approximation sample size: ((z_a + z_power) / effect)^2 * var_sum (inf if effect is 0)."""
    if effect <= 0:
        return math.inf
    z = z_alpha(alpha, one_sided) + float(sps.norm.ppf(power))
    return (z / effect) ** 2 * var_sum


def compare(arm: dict[int, float], base: dict[int, float], alpha: float = 0.05, min_effect: float = 0.0,
            one_sided: bool = True) -> Comparison:
    """Compare per-seed values (seed -> metric) of an arm with its baseline."""
    a = np.array(list(arm.values()), float)
    b = np.array(list(base.values()), float)
    shared = sorted(set(arm) & set(base))
    c = Comparison(len(a), len(b), _mean(a), _mean(b), _sd(a), _sd(b), None, None, len(shared), None, None,
                   None, None, "", None, None, "inconclusive", None, None)
    if len(a) and len(b):
        c.delta = float(a.mean() - b.mean())
    q_df = None  # (quantile df, standard error) of the deciding test
    if len(a) >= 2 and len(b) >= 2:
        c.delta, c.p_welch, se = welch(list(a), list(b), one_sided)
        c.test, q_df = "welch", (welch_df(list(a), list(b)), se, -c.delta, c.p_welch)
        c.n_welch_needed = seeds_needed(c.sd_arm**2 + c.sd_base**2, min_effect, alpha, one_sided)
    if len(shared) >= 2:
        xa, xb = [arm[s] for s in shared], [base[s] for s in shared]
        c.delta_paired, c.p_paired, se = paired(xa, xb, one_sided)
        diffs = [x - y for x, y in zip(xa, xb, strict=True)]
        c.sd_diff = float(np.std(diffs, ddof=1))
        c.p_perm = sign_flip_p(diffs, one_sided)
        c.test, q_df = "paired", (len(shared) - 1, se, -c.delta_paired, c.p_paired)
        c.n_paired_needed = seeds_needed(c.sd_diff**2, min_effect, alpha, one_sided)
    if q_df is not None:
        df, se, improvement, p = q_df
        q = float(sps.t.ppf(1 - alpha if one_sided else 1 - alpha / 2, df))
        c.lcb, c.ucb = improvement - q * se, improvement + q * se
        c.verdict = verdict(improvement, p, c.ucb, alpha, min_effect)
    return c


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if len(x) else None


def verdict(improvement: float, p: float, ucb: float, alpha: float, min_effect: float) -> str:
    if p < alpha and improvement > 0 and improvement >= min_effect:
        return "win"
    if ucb < min_effect:
        return "loss"
    return "inconclusive"


def want_more_seeds(c: Comparison, n: int, max_seeds: int, alpha: float, min_effect: float,
                    one_sided: bool) -> bool:
    """The sequential rule (module docstring): should an inconclusive arm at n seeds get one more?"""
    if c.verdict != "inconclusive" or n >= max_seeds:
        return False
    if c.test == "":
        return True  # fewer than 2 values on a side: nothing is known yet
    if c.test == "paired":
        improvement, var_sum = -c.delta_paired, c.sd_diff**2
    else:
        improvement, var_sum = -c.delta, c.sd_arm**2 + c.sd_base**2
    gap = improvement if improvement >= min_effect else min_effect - improvement
    return seeds_needed(var_sum, gap, alpha, one_sided) <= max_seeds


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the t confidence interval of the mean (low = high = mean for n < 2)."""
    x = np.asarray(values, float)
    m = float(x.mean())
    if len(x) < 2:
        return m, m, m
    h = float(sps.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - h, m + h
