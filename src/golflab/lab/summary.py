"""Per-arm summaries recomputed from the store: what `lab status` prints and `lab report` writes."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golflab.errors import GolflabError
from golflab.lab.plan import BASELINE, Plan, parse_plan
from golflab.lab.schedule import Scheduler, compare_arm, seed_values
from golflab.lab.stats import Comparison, seeds_needed
from golflab.lab.store import Decision, RunRow, Store


@dataclass
class ArmSummary:
    name: str
    ref: str | None
    state: str
    reason: str
    runs: list[RunRow]
    values: dict[int, float]  # seed -> metric of the ok runs
    comparison: Comparison | None  # against ref, on this arm's seeds
    decision: Decision | None

    @property
    def n_ok(self) -> int:
        return sum(r.status == "ok" for r in self.runs)

    @property
    def n_failed(self) -> int:
        return sum(r.status in ("failed", "timeout", "crashed") for r in self.runs)

    @property
    def n_pending(self) -> int:
        return sum(r.status in ("queued", "running") for r in self.runs)

    @property
    def mean(self) -> float | None:
        return float(np.mean(list(self.values.values()))) if self.values else None

    @property
    def sd(self) -> float | None:
        return float(np.std(list(self.values.values()), ddof=1)) if len(self.values) >= 2 else None

    @property
    def verdict(self) -> str:
        if self.decision:
            return self.decision.verdict + (" (promoted)" if self.decision.promoted else "")
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
    view = Scheduler(plan, store, Path("."), write=False).tick()
    decisions = store.decisions()
    runs: dict[str, list[RunRow]] = {}
    for r in store.runs():
        runs.setdefault(r.arm, []).append(r)
    out = []
    for name, st in view.arms.items():
        arm_runs = runs.get(name, [])
        comp = None
        if st.ref is not None and arm_runs:
            comp = compare_arm(plan, arm_runs, runs.get(st.ref, []), st.n_seeds)
        out.append(ArmSummary(name, st.ref, st.state, st.reason, arm_runs,
                              seed_values(arm_runs, plan.metric), comp, decisions.get(name)))
    return out


def noise_floor(arms: list[ArmSummary]) -> float | None:
    base = next(a for a in arms if a.name == BASELINE)
    return base.sd


def needed_lines(plan: Plan, arm: ArmSummary) -> list[str]:
    """Seeds per arm for 80% power at min_effect and at the observed effect (normal approximation)."""
    c = arm.comparison
    if c is None or c.sd_arm is None or c.sd_base is None:
        return []
    r = plan.rule
    unpaired = math.sqrt(c.sd_arm**2 + c.sd_base**2)
    paired = f"σ of the per-seed differences {c.sd_diff:.4g} ({c.n_pairs} shared seeds)" if c.sd_diff is not None \
        else "no shared seeds"
    lines = [f"{arm.name}: σ {c.sd_arm:.4g} (arm), {c.sd_base:.4g} ({arm.ref}); {paired}; σ of an unpaired "
             f"difference √(σ_arm² + σ_ref²) = {unpaired:.4g}"]
    effects = [("min_effect", r.min_effect)] if r.min_effect > 0 else []
    if c.delta is not None:
        effects.append(("observed |Δ|", abs(c.delta)))
    for label, eff in effects:
        welch = seeds_needed(c.sd_arm**2 + c.sd_base**2, eff, r.alpha, r.one_sided)
        part = f"Welch {_n(welch)}"
        if c.sd_diff is not None:
            part += f", paired {_n(seeds_needed(c.sd_diff**2, eff, r.alpha, r.one_sided))}"
        lines.append(f"{arm.name}: to detect {label} = {eff:.4g} with 80% power: {part} seeds per arm")
    return lines


def _n(x: float) -> str:
    return "∞" if math.isinf(x) else str(max(2, math.ceil(x)))


def require_runs(arms: list[ArmSummary], store: Store) -> None:
    if not any(a.runs for a in arms):
        raise GolflabError(f"{store.path}: the lab has no runs yet")
