"""Error control over a whole auto search: screening, then confirmation on fresh seeds at search_level."""

from __future__ import annotations

import math

import numpy as np
import pytest

from golflab.stats import Design, Rule, SearchLedger, search_level
from golflab.stats.simulate import run_design, synthetic_arms

SIGMA = 0.005
CANDIDATES = 12
SEARCHES = 3000


def _search(rng: np.random.Generator, rho: float, rule: Rule, screen: Design) -> tuple[bool, bool]:
    """One no-effect search: (kept any on screening alone, kept any after confirmation)."""
    arms, base = synthetic_arms(rng, 6, [0.0] * CANDIDATES, SIGMA, rho)  # seeds 1..6, shared baseline
    fresh, fresh_base = synthetic_arms(rng, 6, [0.0] * CANDIDATES, SIGMA, rho, seeds=list(range(101, 107)))
    ledger = SearchLedger(alpha=rule.alpha)
    screened = kept = False
    for i in range(CANDIDATES):
        if run_design(screen, arms[i], base).verdict != "win":
            continue
        screened = True
        confirm = Design(Rule(alpha=ledger.next_level()), 2, 6)
        win = run_design(confirm, fresh[i], fresh_base).verdict == "win"
        ledger.record(win, name=f"c{i}")
        kept |= win
    assert ledger.spent <= rule.alpha
    return screened, kept


@pytest.mark.slow
@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_no_effect_search_keeps_nothing_at_rate_alpha(rho):
    rule = Rule(alpha=0.05)
    screen = Design(rule, 2, 6)
    rng = np.random.default_rng(int(rho * 10) + 1)
    results = np.array([_search(rng, rho, rule, screen) for _ in range(SEARCHES)])
    screened, kept = results.mean(axis=0)
    bound = rule.alpha + 2 * math.sqrt(rule.alpha * (1 - rule.alpha) / SEARCHES)
    assert kept <= bound, (screened, kept)
    assert screened > 0.25  # screening alone would keep a no-effect change in a third of searches


def test_search_level_sequence():
    levels = [search_level(0.05, k) for k in range(1, 10_001)]
    assert levels[0] == pytest.approx(0.025) and levels[1] == pytest.approx(0.05 / 6)
    assert sum(levels) < 0.05 and sum(levels) == pytest.approx(0.05, rel=1e-3)
    assert search_level(0.05, 3, horizon=10) == pytest.approx(0.005)
    assert search_level(0.05, 11, horizon=10) == 0.0
    with pytest.raises(ValueError):
        search_level(0.05, 0)


def test_ledger_replays():
    a = SearchLedger(alpha=0.05)
    for kept in (False, True, False):
        a.record(kept)
    b = SearchLedger.from_dict(a.to_dict())
    assert b == a and b.next_level() == pytest.approx(0.05 / 20)
    assert a.spent == pytest.approx(0.05 * (1 / 2 + 1 / 6 + 1 / 12)) and a.kept == 1
