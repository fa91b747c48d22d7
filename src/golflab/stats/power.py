"""Sample sizes and intervals for reports: seeds needed for an effect (normal approximation), and the t
interval of a mean. They inform a plan; they decide nothing (the verdicts are sequential.py's)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

POWER = 0.8


def seeds_needed(var_sum: float, effect: float, alpha: float, one_sided: bool, power: float = POWER) -> float:
    """((z_a + z_power) / effect)^2 * var_sum, inf if effect is 0; var_sum = σ_arm² + σ_ref² for two
    independent arms, σ_diff² for paired ones."""
    if effect <= 0:
        return math.inf
    z = float(sps.norm.ppf(1 - alpha if one_sided else 1 - alpha / 2)) + float(sps.norm.ppf(power))
    return (z / effect) ** 2 * var_sum


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the t confidence interval of the mean (low = high = mean for n < 2)."""
    x = np.asarray(values, float)
    m = float(x.mean())
    if len(x) < 2:
        return m, m, m
    h = float(sps.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - h, m + h


def seeds_text(x: float) -> str:
    """A seed count for people: whole seeds, at least 2 (a spread needs two), "∞" for no effect to see."""
    return "∞" if math.isinf(x) else str(max(2, math.ceil(x)))
