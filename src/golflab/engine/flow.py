"""One experiment as a small state machine, the one decision path of `lab run` and `auto`: an optional
short-fidelity run (then maybe pruned), the first `min` seeds of the experiment and of its reference, one
more seed at a time while the sequential rule says so, the verdict on the validation split, and the same
test on the test split of the same runs (held-out confirmation).

The machine is a generator: it yields the runs it needs (a list of `Req`) or a `Prune` question, and is
sent back their stored results. Runs are looked up by identity, so a replay after a kill walks the same
path at once, and a run two experiments need (a baseline seed) is trained once. `golflab lab simulate`
drives these same generators with synthetic results.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from golflab.engine.harness import UNPAIRED_SEED_OFFSET
from golflab.engine.outcome import heldout_key
from golflab.engine.proposal import Proposal
from golflab.engine.store import RunRow

if TYPE_CHECKING:
    from golflab.lab.stats import Comparison


@dataclass(frozen=True)
class Req:
    """One run: its identity (`key`, `seed`) and what is needed to train it."""

    key: str
    seed: int
    overrides: tuple[str, ...]
    fidelity: float = 1.0
    code: Path | None = None
    code_rev: str = ""
    name: str = field(default="", compare=False)  # the experiment that asked first (names its run directory)


@dataclass
class Prune:
    value: float
    answer: bool | None = None  # set by the engine once the proposer (in idx order) has answered


@dataclass(frozen=True)
class Base:
    """A configuration experiments are judged against: the kept config after decision `idx`, or a named
    earlier experiment (a plan's promoted arm)."""

    idx: int
    name: str
    overrides: tuple[str, ...]
    code: Path | None
    code_rev: str
    key: str  # run key of the config
    cfg_hash: str = ""
    config: dict = field(default_factory=dict, compare=False, repr=False)  # resolved, for propose(base)


@dataclass(frozen=True)
class Judging:
    """What the verdict rule needs: the metric, the test's level and direction, seeds min..max, confirmation."""

    metric: str = "val_bpb"
    alpha: float = 0.05
    min_effect: float = 0.0
    one_sided: bool = True
    seeds_min: int = 2
    seeds_max: int = 4
    confirm: bool = True


@dataclass
class Outcome:
    status: str  # keep / discard / crash / rejected / skipped (the baseline's is keep)
    verdict: str = ""  # win / loss / inconclusive / failed; "" for the baseline, rejected and skipped ones
    note: str = ""  # why, in one line
    values: dict[int, float] = field(default_factory=dict)  # seed -> metric of the compared runs
    ref_values: dict[int, float] = field(default_factory=dict)  # the reference's, same seed indices
    mean: float | None = None
    delta: float | None = None  # of the deciding test, on the compared seeds
    p: float | None = None  # of the deciding test
    test: str = ""  # which test decided
    sd: float | None = None
    n_seeds: int = 0
    test_delta: float | None = None  # the same test on the test split of the same runs
    test_p: float | None = None
    test_verdict: str = ""
    pruned: bool = False  # discarded after its short-fidelity run (its value is not a full-budget one)
    stale: bool = False  # a code proposal built on code that is no longer the kept code
    peak_mem_gb: float | None = None
    base_band: tuple[float, float] | None = None  # the reference's mean ± 2σ on the seeds it was judged on
    stats: dict[str, Any] = field(default_factory=dict)  # the deciding comparison, in full

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["values"] = {str(k): v for k, v in self.values.items()}
        d["ref_values"] = {str(k): v for k, v in self.ref_values.items()}
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Outcome:
        d = {k: v for k, v in d.items() if k in Outcome.__dataclass_fields__}
        d["values"] = {int(k): v for k, v in d.get("values", {}).items()}
        d["ref_values"] = {int(k): v for k, v in d.get("ref_values", {}).items()}
        d["base_band"] = tuple(d["base_band"]) if d.get("base_band") else None
        return Outcome(**d)


Flow = Generator[Any, Any, Outcome]


@dataclass
class Candidate:
    idx: int
    prop: Proposal | None  # None: the baseline (idx 0)
    base: Base  # what it is judged against
    overrides: tuple[str, ...]  # the proposal merged onto the base's overrides
    key: str  # run key of the candidate config
    cfg_hash: str
    code: Path | None
    code_rev: str
    prune_passed: bool  # a rebased candidate keeps its screening verdict
    flow: Flow | None = None
    waiting: list[Req] | Prune | None = None  # what the flow waits for
    outcome: Outcome | None = None
    ready: Any = None  # the feed's Ready item (kept to re-base the candidate)

    @property
    def decided(self) -> bool:
        return self.outcome is not None

    @property
    def name(self) -> str:
        return self.prop.name if self.prop else "baseline"


def _mean(vals: dict[int, float]) -> float | None:
    return sum(vals.values()) / len(vals) if vals else None


def _sd(vals: dict[int, float]) -> float | None:
    if len(vals) < 2:
        return None
    m = sum(vals.values()) / len(vals)
    return math.sqrt(sum((v - m) ** 2 for v in vals.values()) / (len(vals) - 1))


def band(vals: dict[int, float]) -> tuple[float, float] | None:
    sd, m = _sd(vals), _mean(vals)
    return None if sd is None or m is None else (m - 2 * sd, m + 2 * sd)


def _peak(res: dict[Req, RunRow], reqs: list[Req]) -> float | None:
    return max((float(res[r].values.get("peak_mem_gb") or 0.0) for r in reqs), default=0.0) or None


def look(j: Judging, arm: dict[int, float], ref: dict[int, float], n: int, n_max: int) -> tuple[bool, Comparison]:
    """The sequential rule at n seeds: (decided, comparison). The one place a verdict is computed."""
    from golflab.lab.stats import (  # scipy: imported when first judged, not at start-up
        compare,
        want_more_seeds,
    )

    c = compare(arm, ref, j.alpha, j.min_effect, j.one_sided)
    more = want_more_seeds(c, n, n_max, j.alpha, j.min_effect, j.one_sided)
    return not more, c


def baseline_flow(base: Base, seeds: list[int], metric: str) -> Flow:
    reqs = [Req(base.key, s, base.overrides, 1.0, base.code, base.code_rev, base.name) for s in seeds]
    res: dict[Req, RunRow] = yield reqs
    vals = {r.seed: v for r in reqs if (v := res[r].value(metric)) is not None}
    if not vals:
        return Outcome("crash", "failed", note="every baseline run failed; see their stdout.log")
    note = "baseline" if len(vals) == len(reqs) else f"baseline ({len(reqs) - len(vals)} run(s) failed)"
    return Outcome("keep", note=note, values=vals, mean=_mean(vals), sd=_sd(vals), n_seeds=len(vals),
                   peak_mem_gb=_peak(res, reqs), base_band=band(vals))


def arm_seeds(seeds: list[int], crn: bool) -> list[int]:
    return seeds if crn else [s + UNPAIRED_SEED_OFFSET for s in seeds]


def candidate_flow(c: Candidate, j: Judging, seeds: list[int], short: Req | None) -> Flow:
    """`seeds`: the session's seed values (at least the experiment's max); `short`: the short-fidelity
    screening run (None: none)."""
    prop = c.prop
    assert prop is not None
    if short is not None and not c.prune_passed:
        run = (yield [short])[short]
        value = run.value(j.metric)
        if value is None:
            return Outcome("crash", "failed", note=f"failed at fidelity {prop.fidelity:g}: {_first(run.error)}")
        if (yield Prune(value)):
            return Outcome("discard", note=f"pruned at fidelity {prop.fidelity:g}", mean=value, pruned=True)
        c.prune_passed = True
    lo, hi = prop.seeds or (j.seeds_min, j.seeds_max)
    mine_seeds = arm_seeds(seeds, prop.crn)
    n, b = lo, c.base
    while True:
        mine = [Req(c.key, x, c.overrides, 1.0, c.code, c.code_rev, c.name) for x in mine_seeds[:n]]
        theirs = [Req(b.key, x, b.overrides, 1.0, b.code, b.code_rev, b.name) for x in seeds[:n]]
        res: dict[Req, RunRow] = yield mine + theirs
        failed = [r for r in mine if res[r].value(j.metric) is None]
        if failed:
            why = "; ".join(f"seed {r.seed}: {res[r].status} {_first(res[r].error)}".strip() for r in failed)
            return Outcome("crash", "failed", note=f"{len(failed)} of {len(mine)} run(s) failed ({why})",
                           n_seeds=n)
        vals = {r.seed: res[r].value(j.metric) for r in mine}
        ref = {r.seed: v for r in theirs if (v := res[r].value(j.metric)) is not None}
        decided, cmp = look(j, vals, ref if prop.crn else _unpaired(ref), n, hi)
        if decided:
            break
        n += 1
    delta, p = cmp.deciding()
    out = Outcome("discard", cmp.verdict, cmp.verdict, vals, ref, _mean(vals), delta, p, cmp.test, _sd(vals), n,
                  peak_mem_gb=_peak(res, mine), base_band=band(ref), stats=cmp.to_dict())
    if j.confirm:
        _confirm(out, j, res, mine, theirs, prop.crn)
    if out.verdict == "win":
        if prop.promote:
            out.status = "keep"
        else:
            out.note = "win (promote = false: not made the baseline)"
    return out


def _unpaired(ref: dict[int, float]) -> dict[int, float]:
    """The reference's values keyed apart from the arm's seeds, so that no pair is formed (Welch)."""
    return {-1 - s: v for s, v in ref.items()}


def _confirm(out: Outcome, j: Judging, res: dict[Req, RunRow], mine: list[Req], theirs: list[Req], crn: bool) -> None:
    """The same test on the test-split scores of the same runs; a val win that fails it is inconclusive."""
    key = heldout_key(j.metric)
    tv = {r.seed: v for r in mine if (v := _num(res[r].values.get(key))) is not None}
    tb = {r.seed: v for r in theirs if (v := _num(res[r].values.get(key))) is not None}
    if len(tv) >= 2 and len(tb) >= 2:
        from golflab.lab.stats import compare

        t = compare(tv, tb if crn else _unpaired(tb), j.alpha, j.min_effect, j.one_sided)
        out.test_delta, out.test_p = t.deciding()
        out.test_verdict = t.verdict
        if out.verdict == "win" and t.verdict != "win":
            out.verdict, out.note = "inconclusive", f"val win not confirmed on test ({t.verdict})"
        elif out.verdict == "win":
            out.note = "win, confirmed on test"
    elif out.verdict == "win":
        out.note = "win (no test split: unconfirmed)"


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _first(error: str | None) -> str:
    return (error or "").strip().splitlines()[0][:120] if (error or "").strip() else ""
