"""The margin a new record needs over the current best: parameter-golf's rule (an improvement of at least
0.005 nats at p < 0.01) as golflab's margin test (golflab.stats.margin_test: one-sided Welch test of the new
seeds against the previous record's per-seed values, H0: mean(old) - mean(new) <= margin; zero spread
and ties fall back to the exact permutation test, docs/verdicts.md)."""

from __future__ import annotations

from golflab.errors import GolflabError

RECORD_MARGIN_NATS = 0.005
RECORD_ALPHA = 0.01


def record_margin(new: list[float], old: list[float], margin: float = RECORD_MARGIN_NATS,
                  alpha: float = RECORD_ALPHA) -> tuple[float, bool, float]:
    """(p, passed, lcb): the one-sided p that `old - new` (lower is better) exceeds `margin`, whether the
    rule passes at alpha, and the 1 - alpha lower confidence bound on mean(old) - mean(new)."""
    from golflab.stats import margin_test

    if len(new) < 2:
        raise GolflabError(f"the margin test needs at least 2 new seeds, got {len(new)}")
    if not old:
        raise GolflabError("the margin test needs the previous record's per-seed values")
    look = margin_test(list(new), list(old), margin, alpha)
    p = 1.0 if look.p is None else float(look.p)
    lcb = look.lcb if look.lcb is not None else float("nan")
    return p, look.verdict == "win", lcb
