"""Per-arm summaries recomputed from the store: what `lab status` prints and `lab report` writes.

A decided arm shows the values and comparison its decision was made on (the same seeds for μ, σ, Δ and
p); an arm still running shows a provisional comparison on the seeds both sides have so far.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from golflab.engine.session import Decision
from golflab.engine.store import FAILED, RunRow, Store
from golflab.errors import GolflabError
from golflab.lab.plan import BASELINE, Plan, parse_plan
from golflab.stats import Look, judge, seeds_needed, seeds_text


@dataclass
class ArmSummary:
    name: str
    ref: str | None
    state: str  # baseline / waiting / running / decided / skipped
    reason: str
    runs: list[RunRow]  # this arm's runs (its config's key), finished
    pending: int  # runs in flight
    values: dict[int, float]  # seed -> metric of the compared runs (decided) or of the ok runs so far
    comparison: Look | None  # against ref on the compared seeds: the deciding look, or a provisional one
    decision: Decision | None
    ref_values: dict[int, float] = field(default_factory=dict)  # the reference's, same seeds

    @property
    def n_ok(self) -> int:
        return sum(r.ok for r in self.runs)

    @property
    def n_failed(self) -> int:
        return sum(r.status in FAILED for r in self.runs)

    @property
    def mean(self) -> float | None:
        return float(np.mean(list(self.values.values()))) if self.values else None

    @property
    def sd(self) -> float | None:
        return float(np.std(list(self.values.values()), ddof=1)) if len(self.values) >= 2 else None

    @property
    def verdict(self) -> str:
        d = self.decision
        if d is not None and self.name != BASELINE:
            if d.status == "skipped":
                return "skipped"
            return (d.verdict or d.status) + (" (promoted)" if d.kept else "")
        if self.state in ("skipped", "waiting"):
            return self.state
        return "pending" if self.name != BASELINE else ""


def stored_plan(store: Store, fallback: Plan) -> Plan:
    """The plan as the lab recorded it (reports come from the store, not from a since-edited file)."""
    text = store.get_meta("plan_text")
    if text is None:
        return fallback
    over = json.loads(store.get_meta("plan_overrides") or "{}")
    return parse_plan(text, fallback.path, preset=over.get("preset"), data=over.get("data"), check_configs=False)


def summarize(plan: Plan, store: Store) -> list[ArmSummary]:
    decisions = {d["name"]: Decision.from_record(d) for d in store.decisions()}
    experiments = {e["name"]: e for e in store.experiments().values()}
    runs: dict[str, list[RunRow]] = {}
    for r in store.runs():
        runs.setdefault(r.key, []).append(r)
    inflight: dict[str, int] = {}
    for f in store.inflight():
        inflight[f.key] = inflight.get(f.key, 0) + 1
    base = decisions.get(BASELINE)
    base_key = base.key if base else next((e["ref_key"] for e in experiments.values() if e.get("ref") == BASELINE), "")
    out = [ArmSummary(BASELINE, None, "baseline", "", runs.get(base_key, []), inflight.get(base_key, 0),
                      _values(runs.get(base_key, []), plan.metric), None, base)]
    keys = {BASELINE: base_key}
    for arm in plan.arms:
        d, e = decisions.get(arm.name), experiments.get(arm.name)
        key = (d.key if d else "") or (e["key"] if e else "")
        ref = (d.ref if d else "") or (e["ref"] if e else "") or None
        keys[arm.name] = key
        arm_runs = runs.get(key, []) if key else []
        if d is not None and d.status == "skipped":
            out.append(ArmSummary(arm.name, None, "skipped", d.note, [], 0, {}, None, d))
            continue
        if e is None and d is None:
            out.append(ArmSummary(arm.name, None, "waiting", "waits for the arms it depends on", [], 0, {}, None, None))
            continue
        if d is not None and d.outcome.values:
            values, ref_values = d.outcome.values, d.outcome.ref_values
            state = "decided"
        else:
            values = _values(arm_runs, plan.metric)
            ref_key = (d.ref_key if d else "") or (e["ref_key"] if e else "")
            ref_values = _values(runs.get(ref_key, []), plan.metric)
            state = "decided" if d is not None else "running"
        if not arm.crn:  # judged unpaired: no pairs are formed
            ref_values = {-1 - s: v for s, v in ref_values.items()}
        if d is not None and d.outcome.stats:
            comp: Look | None = Look(**d.outcome.stats)
        elif values and (ref_values or plan.rule.kind != "arm"):  # running: provisional, fixed at these seeds
            comp = judge(plan.rule, values, ref_values if plan.rule.kind == "arm" else None)
        else:
            comp = None
        reason = d.note if d is not None else (f"provisional: {comp.why}" if comp else "")
        out.append(ArmSummary(arm.name, ref, state, reason, arm_runs, inflight.get(key, 0), values, comp, d,
                              ref_values))
    return out


def _values(runs: list[RunRow], metric: str) -> dict[int, float]:
    return {r.seed: v for r in runs if (v := r.value(metric)) is not None}


def noise_floor(arms: list[ArmSummary]) -> float | None:
    return next(a for a in arms if a.name == BASELINE).sd


def needed_lines(plan: Plan, arm: ArmSummary) -> list[str]:
    """Seeds per arm for 80% power at min_effect and at the observed effect (normal approximation)."""
    a, b = list(arm.values.values()), list(arm.ref_values.values())
    if len(a) < 2 or len(b) < 2:
        return []
    sd_a, sd_b = float(np.std(a, ddof=1)), float(np.std(b, ddof=1))
    shared = sorted(set(arm.values) & set(arm.ref_values))
    sd_diff = float(np.std([arm.values[s] - arm.ref_values[s] for s in shared], ddof=1)) if len(shared) >= 2 else None
    r = plan.rule
    unpaired = math.sqrt(sd_a**2 + sd_b**2)
    paired = f"σ of the per-seed differences {sd_diff:.4g} ({len(shared)} shared seeds)" if sd_diff is not None \
        else "no shared seeds"
    lines = [f"{arm.name}: σ {sd_a:.4g} (arm), {sd_b:.4g} ({arm.ref}); {paired}; σ of an unpaired "
             f"difference √(σ_arm² + σ_ref²) = {unpaired:.4g}"]
    effects = [("min_effect", r.min_effect)] if r.min_effect > 0 else []
    effects.append(("observed |Δ|", abs(float(np.mean(a)) - float(np.mean(b)))))
    for label, eff in effects:
        part = f"Welch {seeds_text(seeds_needed(sd_a**2 + sd_b**2, eff, r.alpha, r.one_sided))}"
        if sd_diff is not None:
            part += f", paired {seeds_text(seeds_needed(sd_diff**2, eff, r.alpha, r.one_sided))}"
        lines.append(f"{arm.name}: to detect {label} = {eff:.4g} with 80% power: {part} seeds per arm")
    return lines


def require_runs(arms: list[ArmSummary], store: Store) -> None:
    if not any(a.runs for a in arms):
        raise GolflabError(f"{store.path}: the lab has no runs yet")


@dataclass
class TimeUse:
    """Where a lab's wall time went: per run, the time outside training and evaluation (process start,
    imports, compile warm-up, data), and the lab's training share over its slots."""

    runs: int
    train_s: float
    eval_s: float
    overhead_s: float  # mean per run: wall - train - eval
    wall_s: float  # first start to last finish
    slots: int

    @property
    def share(self) -> float | None:
        return self.train_s / (self.wall_s * self.slots) if self.wall_s > 0 else None


def time_use(store: Store) -> TimeUse | None:
    runs = [r for r in store.runs() if r.ok and r.wall_s and not r.adopted and r.started_at]
    if not runs:
        return None
    train = sum(float(r.values.get("train_seconds") or 0.0) for r in runs)
    ev = sum(float(r.values.get("eval_seconds") or 0.0) for r in runs)
    over = sum(r.wall_s or 0.0 for r in runs) - train - ev
    wall = max(r.finished_at or 0.0 for r in runs) - min(r.started_at or 0.0 for r in runs)
    return TimeUse(len(runs), train, ev, over / len(runs), wall, int(store.get_meta("slots") or 1))


def time_line(t: TimeUse | None) -> str:
    if t is None:
        return "time: no timed runs yet"
    share = f"{t.share:.0%}" if t.share is not None else "-"
    return (f"time: {t.runs} runs, {t.train_s:.0f} s training + {t.eval_s:.0f} s evaluation; {t.overhead_s:.1f} s "
            f"per run outside both; training share {share} of {t.wall_s:.0f} s wall x {t.slots} slot(s)")
