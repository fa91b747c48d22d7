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

import dataclasses
import math
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from golflab.engine.harness import REPLICATION_SEED_OFFSET, UNPAIRED_SEED_OFFSET
from golflab.engine.outcome import heldout_key
from golflab.engine.proposal import Proposal
from golflab.engine.store import RunRow
from golflab.stats.rules import Rule

if TYPE_CHECKING:
    from golflab.engine.feed import Ready
    from golflab.stats.sequential import Look


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
    """What the verdict needs: the rule, the metric, seeds min..max, and the confirmations a win must pass."""

    rule: Rule = field(default_factory=Rule)
    metric: str = "val_bpb"
    seeds_min: int = 2
    seeds_max: int = 4
    confirm_test: bool = False  # the same test on the test split of the same runs
    replicate: bool = False  # a win must win again on fresh seeds, at the search's level for this experiment
    horizon: int | None = None  # experiments in the search (its alpha is spread over them)

    def replication_rule(self, idx: int) -> Rule:
        """Experiment idx's confirmation level: P(any no-effect change kept) <= alpha over the search."""
        from golflab.stats.search import search_level

        return dataclasses.replace(self.rule, alpha=search_level(self.rule.alpha, idx, self.horizon))


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
    rep_delta: float | None = None  # the replication on fresh seeds (auto)
    rep_p: float | None = None
    rep_verdict: str = ""
    rep_level: float | None = None  # the search-wide level it was tested at
    rep_values: dict[int, float] = field(default_factory=dict)
    pruned: bool = False  # discarded after its short-fidelity run (its value is not a full-budget one)
    stale: bool = False  # a code proposal built on code that is no longer the kept code
    peak_mem_gb: float | None = None
    base_band: tuple[float, float] | None = None  # the reference's mean ± 2σ on the seeds it was judged on
    stats: dict[str, Any] = field(default_factory=dict)  # the deciding comparison, in full

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["values"] = {str(k): v for k, v in self.values.items()}
        d["ref_values"] = {str(k): v for k, v in self.ref_values.items()}
        d["rep_values"] = {str(k): v for k, v in self.rep_values.items()}
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Outcome:
        d = {k: v for k, v in d.items() if k in Outcome.__dataclass_fields__}
        d["values"] = {int(k): v for k, v in d.get("values", {}).items()}
        d["ref_values"] = {int(k): v for k, v in d.get("ref_values", {}).items()}
        d["rep_values"] = {int(k): v for k, v in d.get("rep_values", {}).items()}
        d["base_band"] = tuple(d["base_band"]) if d.get("base_band") else None
        return Outcome(**d)


# yields the runs it needs (or a prune question), is sent their stored rows (or the answer)
Flow = Generator["list[Req] | Prune", "dict[Req, RunRow] | bool | None", Outcome]


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
    ready: Ready | None = None  # the feed's item (kept to re-base the candidate)

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
    look, res, mine, theirs = yield from _judged(c, j.rule, j.metric, seeds, lo, hi, prop.crn)
    if look is None:
        return _failed(res, mine, j.metric, lo)
    out = _outcome(look, res, mine, theirs, j.metric)
    if j.confirm_test:
        _confirm_on_test(out, j, res, mine, theirs, prop.crn)
    if j.replicate and out.verdict == "win":
        fresh = [s + REPLICATION_SEED_OFFSET for s in seeds]
        rule = j.replication_rule(c.idx)
        rep, rres, rmine, _ = yield from _judged(c, rule, j.metric, fresh, lo, hi, prop.crn)
        out.rep_level = rule.alpha
        if rep is None:
            out.verdict, out.note = "failed", f"replication: {_failed(rres, rmine, j.metric, lo).note}"
        else:
            out.rep_delta, out.rep_p, out.rep_verdict = rep.delta, rep.p, rep.verdict
            out.rep_values = {r.seed: v for r in rmine if (v := rres[r].value(j.metric)) is not None}
            if rep.verdict == "win":
                out.note = f"win, replicated on fresh seeds at level {rule.alpha:.3g}: {rep.why}"
            else:
                out.verdict = "inconclusive"
                out.note = f"screening win not replicated on fresh seeds at level {rule.alpha:.3g}: {rep.why}"
    if out.verdict == "win":
        if prop.promote:
            out.status = "keep"
        else:
            out.note = f"win (promote = false: not made the baseline): {out.note}"
    return out


def _judged(c: Candidate, rule: Rule, metric: str, seeds: list[int], lo: int, hi: int, crn: bool):
    """The sequential design on `seeds`: (final look or None when a run failed, results, arm reqs, ref reqs)."""
    from golflab.stats.sequential import Design  # scipy: imported at the first verdict, not at start-up

    design = Design(rule, lo, hi)
    mine_seeds, b = arm_seeds(seeds, crn), c.base
    n = lo
    while True:
        mine = [Req(c.key, x, c.overrides, 1.0, c.code, c.code_rev, c.name) for x in mine_seeds[:n]]
        theirs = [Req(b.key, x, b.overrides, 1.0, b.code, b.code_rev, b.name) for x in seeds[:n]] \
            if rule.kind == "arm" else []
        res: dict[Req, RunRow] = yield mine + theirs
        if any(res[r].value(metric) is None for r in mine):
            return None, res, mine, theirs
        vals = {r.seed: res[r].value(metric) for r in mine}
        ref = {r.seed: v for r in theirs if (v := res[r].value(metric)) is not None}
        look = design.look(vals, (ref if crn else _unpaired(ref)) if rule.kind == "arm" else None)
        if look.verdict != "continue":
            return look, res, mine, theirs
        n += 1


def _failed(res: dict[Req, RunRow], mine: list[Req], metric: str, n: int) -> Outcome:
    bad = [r for r in mine if res[r].value(metric) is None]
    refused = [r for r in bad if res[r].status == "rejected"]
    if refused:  # the trusted harness refused the model: the proposal is rejected, not merely failed
        return Outcome("rejected", note=f"measurement refused: {_first(res[refused[0]].error)}", n_seeds=n)
    why = "; ".join(f"seed {r.seed}: {res[r].status} {_first(res[r].error)}".strip() for r in bad)
    return Outcome("crash", "failed", note=f"{len(bad)} of {len(mine)} run(s) failed ({why})", n_seeds=n)


def _outcome(look: Look, res: dict[Req, RunRow], mine: list[Req], theirs: list[Req], metric: str) -> Outcome:
    vals = {r.seed: v for r in mine if (v := res[r].value(metric)) is not None}
    ref = {r.seed: v for r in theirs if (v := res[r].value(metric)) is not None}
    return Outcome("discard", look.verdict, look.why, vals, ref, look.mean_arm, look.delta, look.p, look.test,
                   look.sd_arm, look.n, peak_mem_gb=_peak(res, mine), base_band=band(ref), stats=look.to_dict())


def _unpaired(ref: dict[int, float]) -> dict[int, float]:
    """The reference's values keyed apart from the arm's seeds, so that no pair is formed (Welch)."""
    return {-1 - s: v for s, v in ref.items()}


def _confirm_on_test(out: Outcome, j: Judging, res: dict[Req, RunRow], mine: list[Req], theirs: list[Req],
                     crn: bool) -> None:
    """The same rule, fixed at the compared seeds, on the test-split scores of the same runs; a val win that
    fails it is inconclusive. (It guards against tuning to the val split; it is not a replication.)"""
    key = heldout_key(j.metric)
    tv = {r.seed: v for r in mine if (v := _num(res[r].values.get(key))) is not None}
    tb = {r.seed: v for r in theirs if (v := _num(res[r].values.get(key))) is not None}
    if len(tv) >= 2 and (len(tb) >= 2 or j.rule.kind != "arm"):
        from golflab.stats.sequential import judge

        t = judge(j.rule, tv, (tb if crn else _unpaired(tb)) if j.rule.kind == "arm" else None)
        out.test_delta, out.test_p, out.test_verdict = t.delta, t.p, t.verdict
        if out.verdict == "win" and t.verdict != "win":
            out.verdict, out.note = "inconclusive", f"val win not confirmed on test ({t.verdict}: {t.why})"
        elif out.verdict == "win":
            out.note = f"{out.note}; confirmed on test (p {t.p:.3g})"
    elif out.verdict == "win":
        out.note = f"{out.note}; no test split: unconfirmed"


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _first(error: str | None) -> str:
    return (error or "").strip().splitlines()[0][:120] if (error or "").strip() else ""
