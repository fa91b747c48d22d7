"""The margin a new record needs over the current best: a one-sided Welch test on per-seed val_loss.

parameter-golf's rule: a new record must beat the previous one by at least 0.005 nats at p < 0.01.
H0: mean(old) - mean(new) <= margin; H1: it is larger. This is the one place the record check calls;
point it at golflab.stats.margin_test once that exists, with the same signature and meaning.
"""

from __future__ import annotations

import math
import statistics

from scipy import stats

from golflab.errors import GolflabError

RECORD_MARGIN_NATS = 0.005
RECORD_ALPHA = 0.01


def record_margin(new: list[float], old: list[float], margin: float = RECORD_MARGIN_NATS,
                  alpha: float = RECORD_ALPHA) -> tuple[float, bool, float]:
    """(p, passed, lcb): the one-sided p-value that `old - new` (lower is better) exceeds `margin`,
    whether p < alpha, and the 1 - alpha lower confidence bound on mean(old) - mean(new).

    Welch's unequal-variance t-test; with a single old value it is taken as exact (one-sample test)."""
    if len(new) < 2:
        raise GolflabError(f"the margin test needs at least 2 new seeds, got {len(new)}")
    if not old:
        raise GolflabError("the margin test needs the previous record's per-seed values")
    diff = statistics.mean(old) - statistics.mean(new)
    var_new = statistics.variance(new) / len(new)
    var_old = statistics.variance(old) / len(old) if len(old) > 1 else 0.0
    se = math.sqrt(var_new + var_old)
    if se == 0.0:  # identical values: the difference is known exactly
        return (0.0 if diff > margin else 1.0), diff > margin, diff
    terms = [(var_new, len(new))] + ([(var_old, len(old))] if len(old) > 1 else [])
    df = se**4 / sum(v**2 / (n - 1) for v, n in terms)
    t = (diff - margin) / se
    p = float(stats.t.sf(t, df))
    lcb = diff - float(stats.t.ppf(1 - alpha, df)) * se
    return p, p < alpha, lcb
