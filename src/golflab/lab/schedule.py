"""The lab's state machine, recomputed from the store on every tick (which is what makes it resumable).

For each arm, in priority order:
1. promotions: arms with a lower priority number and `promote = true` must be decided first; the last
   one that won becomes this arm's reference, and its overrides the base of this arm's config;
2. `run_if`: waits for the named arm's verdict, then runs or is skipped;
3. seeds: `min` seeds of the arm and the same seeds of its reference; when all are finished the arm is
   judged on those seeds; an inconclusive arm gets one more seed while the sequential rule allows;
4. confirmation: a val win with `confirm_on_test` is re-scored on the test split (every compared run
   of both arms) and stays a win only if it also wins there.
Decisions are written once and never revised, so a resumed lab takes the same path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golflab.lab.outcome import TEST_SPLIT, heldout_key, metric_value, split_metric
from golflab.lab.plan import BASELINE, Plan
from golflab.lab.stats import Comparison, compare, want_more_seeds
from golflab.lab.store import TERMINAL, RunRow, Store


@dataclass
class ArmState:
    name: str
    ref: str | None  # the arm it is compared with (None for the baseline)
    overrides: list[str]  # on top of the plan's baseline overrides
    state: str  # baseline | waiting | skipped | running | confirming | decided
    reason: str = ""
    n_seeds: int = 0  # seeds this arm is judged on (so far)
    comparison: Comparison | None = None


@dataclass
class LabView:
    arms: dict[str, ArmState] = field(default_factory=dict)
    pending: int = 0  # queued or running runs and evals


def seed_values(runs: list[RunRow], metric: str, n: int | None = None) -> dict[int, float]:
    """seed -> metric of the ok runs (with seed index < n when given)."""
    out = {}
    for r in runs:
        if r.status == "ok" and (n is None or r.seed_index < n):
            v = metric_value(r.values, metric)
            if v is not None:
                out[r.seed] = v
    return out


def verdict_holds(condition: str, verdict: str) -> bool:
    return {"wins": "win", "loses": "loss", "inconclusive": "inconclusive"}[condition] == verdict


def compare_arm(plan: Plan, arm_runs: list[RunRow], ref_runs: list[RunRow], n: int,
                values: Any = None) -> Comparison:
    """The arm's first n seeds against the same seed indices of its reference."""
    pick = values or (lambda runs: seed_values(runs, plan.metric, n))
    r = plan.rule
    return compare(pick(arm_runs), pick(ref_runs), r.alpha, r.min_effect, r.one_sided)


class Scheduler:
    """Turns (plan, store) into the runs and evals to do next and records decisions when they are due."""

    def __init__(self, plan: Plan, store: Store, lab_dir: Path, write: bool = True):
        self.plan, self.store, self.lab_dir = plan, store, lab_dir
        self.write = write  # False: only look (status and reports never change the lab)
        self._base_dicts: dict[int, dict[str, Any]] = {}

    def tick(self) -> LabView:
        plan, store = self.plan, self.store
        decisions = store.decisions()
        runs: dict[str, list[RunRow]] = {}
        for r in store.runs():
            runs.setdefault(r.arm, []).append(r)
        evals = {(e.run_id, e.split): e for e in store.evals()}
        view = LabView()
        view.arms[BASELINE] = ArmState(BASELINE, None, [], "baseline", n_seeds=plan.baseline_seeds.min)
        need: dict[str, set[int]] = {BASELINE: set(range(plan.baseline_seeds.min))}

        def done(arm: str, n: int) -> bool:
            have = {r.seed_index: r for r in runs.get(arm, [])}
            return all(i in have and have[i].done for i in range(n))

        for arm in plan.arms:
            st = ArmState(arm.name, None, [], "waiting")
            view.arms[arm.name] = st
            ref, blocked = BASELINE, ""
            for p in plan.arms:
                if p.priority >= arm.priority:
                    break
                if not p.promote or view.arms[p.name].state == "skipped":
                    continue
                if p.name not in decisions:
                    blocked = f"waits for the verdict of {p.name} (promote)"
                    break
                if decisions[p.name].promoted:
                    ref = p.name
            if blocked:
                st.reason = blocked
                continue
            if arm.run_if:
                cond, dep = arm.run_if
                if view.arms[dep].state == "skipped":
                    st.state, st.reason = "skipped", f"{dep} was skipped"
                    continue
                if dep not in decisions:
                    st.reason = f"waits for the verdict of {dep} (run_if {cond}:{dep})"
                    continue
                if not verdict_holds(cond, decisions[dep].verdict):
                    st.state, st.reason = "skipped", f"{dep}: {decisions[dep].verdict} (run_if {cond}:{dep})"
                    continue
            st.ref = ref
            st.overrides = [*view.arms[ref].overrides, *arm.overrides]
            have = [r.seed_index for r in runs.get(arm.name, [])]
            n = max(arm.seeds.min, max(have, default=-1) + 1)
            st.n_seeds = n
            need.setdefault(arm.name, set()).update(range(n))
            need.setdefault(ref, set()).update(range(n))
            if arm.name in decisions:
                st.state = "decided"
                st.comparison = compare_arm(plan, runs.get(arm.name, []), runs.get(ref, []), n)
                continue
            st.state = "running"
            if not (done(arm.name, n) and done(ref, n)):
                continue
            c = compare_arm(plan, runs.get(arm.name, []), runs.get(ref, []), n)
            st.comparison = c
            rule = plan.rule
            if want_more_seeds(c, n, arm.seeds.max, rule.alpha, rule.min_effect, rule.one_sided):
                need[arm.name].add(n)
                need[ref].add(n)
                st.n_seeds = n + 1
                continue
            stats: dict[str, Any] = {"val": c.to_dict(), "ref": ref, "n_seeds": n, "metric": plan.metric}
            final = c.verdict
            if c.verdict == "win" and rule.confirm_on_test:
                test = self._confirm(runs.get(arm.name, []), runs.get(ref, []), n, evals)
                if test is None:
                    st.state = "confirming"
                    continue
                stats["test"] = test.to_dict()
                final = "win" if test.verdict == "win" else "inconclusive"
                stats["note"] = "confirmed on test" if final == "win" else f"val win not confirmed on test ({test.verdict})"
            if not self.write:
                continue
            store.decide(arm.name, final, stats, arm.promote and final == "win")
            decisions = store.decisions()
            st.state = "decided"

        if self.write:
            self._materialise(view, need, runs)
        view.pending = sum(1 for r in store.runs() if r.status not in TERMINAL)
        view.pending += sum(1 for e in store.evals() if e.status not in TERMINAL)
        return view

    def _confirm(self, arm_runs: list[RunRow], ref_runs: list[RunRow], n: int, evals: dict) -> Comparison | None:
        """The comparison on the test split: from the runs' own test scores (eval.also_splits), else from
        test-split evals queued for the compared ok runs, once all have finished."""
        key = split_metric(self.plan.metric)
        compared = [r for r in (*arm_runs, *ref_runs) if r.status == "ok" and r.seed_index < n]
        missing = False
        for r in compared:
            if metric_value(r.values, heldout_key(self.plan.metric)) is not None:
                continue
            e = evals.get((r.id, TEST_SPLIT))
            if e is None:
                if self.write:
                    self.store.add_eval(r.id, TEST_SPLIT)
                missing = True
            elif e.status not in TERMINAL:
                missing = True
        if missing:
            return None

        def test_values(runs: list[RunRow]) -> dict[int, float]:
            out = {}
            for r in runs:
                if r.status != "ok" or r.seed_index >= n:
                    continue
                v = metric_value(r.values, heldout_key(self.plan.metric))
                e = evals.get((r.id, TEST_SPLIT))
                if v is None and e is not None and e.status == "ok":
                    v = metric_value(e.values, key)
                if v is not None:
                    out[r.seed] = v
            return out

        return compare_arm(self.plan, arm_runs, ref_runs, n, values=test_values)

    def _materialise(self, view: LabView, need: dict[str, set[int]], runs: dict[str, list[RunRow]]) -> None:
        """Add a queued run for every needed (arm, seed index) that the store does not hold yet."""
        from golflab.config import config_hash, to_dict, to_toml

        for arm, indices in need.items():
            have = {r.seed_index for r in runs.get(arm, [])}
            for i in sorted(indices - have):
                seed = self.plan.seed_of(i, arm)
                cfg = self.plan.build_config(view.arms[arm].overrides, seed)
                diff = dict_diff(self._base_dict(seed), to_dict(cfg))
                run_dir = self.lab_dir / "runs" / arm / f"seed{seed}"
                self.store.add_run(arm, seed, i, view.arms[arm].ref, config_hash(cfg), to_toml(cfg), diff,
                                   str(run_dir))

    def _base_dict(self, seed: int) -> dict[str, Any]:
        from golflab.config import to_dict

        if seed not in self._base_dicts:
            self._base_dicts[seed] = to_dict(self.plan.build_config([], seed))
        return self._base_dicts[seed]


def dict_diff(base: dict[str, Any], other: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flat {dotted key: value} of what `other` changes relative to `base`."""
    out: dict[str, Any] = {}
    for k, v in other.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            out.update(dict_diff(base[k], v, f"{prefix}{k}."))
        elif base.get(k) != v:
            out[f"{prefix}{k}"] = v
    return out
