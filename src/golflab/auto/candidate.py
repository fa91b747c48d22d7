"""One experiment as a small state machine: an optional short-fidelity run (then maybe pruned), the
first `seeds_min` seeds of the candidate and of its baseline, one more seed at a time while the
sequential rule says it could decide, the paired test on the validation split, and the same test on the
test split of the same runs (held-out confirmation).

The machine is a generator: it yields the runs it needs (a list of `Req`) or a `Prune` question, and is
sent back their stored results. Runs are looked up by identity, so a replay after a kill walks the same
path at once, and a run two candidates need (a baseline seed) is trained once.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golflab.auto.proposers import Proposal
from golflab.auto.store import RunRow
from golflab.lab.stats import compare, want_more_seeds


@dataclass(frozen=True)
class Req:
    """One run: its identity (`key`, `seed`) and what is needed to train it."""

    key: str
    seed: int
    overrides: tuple[str, ...]
    fidelity: float = 1.0
    code: Path | None = None


@dataclass
class Prune:
    value: float
    answer: bool | None = None  # set by the engine once the proposer (in idx order) has answered


@dataclass(frozen=True)
class Base:
    """The baseline a candidate is judged against: the kept config after decision `idx`."""

    idx: int
    overrides: tuple[str, ...]
    code: Path | None
    code_rev: str
    key: str  # run key of the baseline config
    cfg_hash: str = ""
    config: dict = field(default_factory=dict, compare=False, repr=False)  # resolved, for propose(base)


@dataclass
class Outcome:
    status: str  # keep / discard / crash / rejected
    values: dict[int, float] = field(default_factory=dict)
    mean: float | None = None
    delta: float | None = None
    p: float | None = None
    note: str = ""
    peak_mem_gb: float | None = None
    verdict: str = ""  # win / loss / inconclusive (win only when confirmed), "" without a test
    test_delta: float | None = None
    test_p: float | None = None
    test_verdict: str = ""
    sd: float | None = None
    pruned: bool = False
    base_band: tuple[float, float] | None = None  # baseline mean ± 2σ on the seeds it was judged on


Flow = Generator[Any, Any, Outcome]


@dataclass
class Candidate:
    idx: int
    prop: Proposal | None  # None: the baseline (idx 0)
    base: Base
    overrides: tuple[str, ...]  # the proposal merged onto the baseline's overrides
    key: str  # run key of the candidate config
    cfg_hash: str
    code: Path | None
    code_rev: str
    prune_passed: bool  # a rebased candidate keeps its screening verdict
    flow: Flow | None = None
    waiting: Any = None  # list[Req] or Prune the flow waits for
    outcome: Outcome | None = None
    ready: Any = None  # the feed's Ready item (kept to re-base the candidate)

    @property
    def decided(self) -> bool:
        return self.outcome is not None


def _mean(vals: dict[int, float]) -> float | None:
    return sum(vals.values()) / len(vals) if vals else None


def _sd(vals: dict[int, float]) -> float | None:
    if len(vals) < 2:
        return None
    m = _mean(vals)
    return math.sqrt(sum((v - m) ** 2 for v in vals.values()) / (len(vals) - 1))


def band(vals: dict[int, float]) -> tuple[float, float] | None:
    sd = _sd(vals)
    return None if sd is None else (_mean(vals) - 2 * sd, _mean(vals) + 2 * sd)


def baseline_flow(base: Base, seeds: list[int]) -> Flow:
    reqs = [Req(base.key, s, base.overrides, 1.0, base.code) for s in seeds]
    res: dict[Req, RunRow] = yield reqs
    vals = {r.seed: res[r].value for r in reqs if res[r].status == "ok" and res[r].value is not None}
    if len(vals) < len(reqs):
        return Outcome("crash", note="baseline crashed")
    peak = max((res[r].peak_mem_gb or 0.0) for r in reqs) or None
    return Outcome("keep", vals, _mean(vals), note="baseline", peak_mem_gb=peak, sd=_sd(vals),
                   base_band=band(vals))


def candidate_flow(c: Candidate, s: Any, seeds: list[int], short: Req | None) -> Flow:
    """`s`: the loop's AutoSettings; `seeds`: the search's seeds (seeds_max of them); `short`: the
    short-fidelity screening run (None: none)."""
    prop = c.prop
    if short is not None and not c.prune_passed:
        run = (yield [short])[short]
        if run.status != "ok" or run.value is None:
            return Outcome("crash", note=f"crashed at fidelity {prop.fidelity:g}")
        if (yield Prune(run.value)):
            return Outcome("discard", mean=run.value, note=f"pruned at fidelity {prop.fidelity:g}", pruned=True)
        c.prune_passed = True
    n = s.seeds_min
    b = c.base
    while True:
        mine = [Req(c.key, x, c.overrides, 1.0, c.code) for x in seeds[:n]]
        theirs = [Req(b.key, x, b.overrides, 1.0, b.code) for x in seeds[:n]]
        res = yield mine + theirs
        if any(res[r].status != "ok" or res[r].value is None for r in mine):
            return Outcome("crash", note="crashed")
        vals = {r.seed: res[r].value for r in mine}
        base = {r.seed: res[r].value for r in theirs if res[r].status == "ok" and res[r].value is not None}
        cmp = compare(vals, base, s.alpha, s.min_effect, one_sided=True)
        if not want_more_seeds(cmp, n, s.seeds_max, s.alpha, s.min_effect, True):
            break
        n += 1
    out = Outcome("discard", vals, _mean(vals), *cmp.deciding(), cmp.verdict, verdict=cmp.verdict, sd=_sd(vals),
                  peak_mem_gb=max((res[r].peak_mem_gb or 0.0) for r in mine) or None, base_band=band(base))
    if s.confirm:
        tv = {r.seed: res[r].test_value for r in mine if res[r].test_value is not None}
        tb = {r.seed: res[r].test_value for r in theirs if res[r].test_value is not None}
        if len(tv) >= 2 and len(set(tv) & set(tb)) >= 2:
            t = compare(tv, tb, s.alpha, s.min_effect, one_sided=True)
            out.test_delta, out.test_p = t.deciding()
            out.test_verdict = t.verdict
            if out.verdict == "win" and t.verdict != "win":
                out.verdict, out.note = "inconclusive", "val win not confirmed on test"
        elif out.verdict == "win":
            out.note = "win (no test split: unconfirmed)"
    if out.verdict == "win":
        if prop.promote:
            out.status = "keep"
        else:
            out.note = "win (promote = false: not made the baseline)"
    return out
