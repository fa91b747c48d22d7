"""A lab plan as a proposer of the one engine: its arms in priority order, each with its reference, seeds and
pairing, so that `golflab lab run PLAN` and `golflab auto --plan PLAN` are the same session.

- promotion: an arm waits until every arm of a lower priority number with `promote = true` is decided;
  the last of those that won becomes its reference, and its config the base of the arm's;
- `run_if = "<wins|loses|inconclusive>:<arm>"`: the arm waits for that arm's verdict; when it does not
  hold (or that arm was skipped) the arm is recorded as skipped, with the reason.
The proposer only reads committed decisions, so a resumed lab proposes the same arms in the same order.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from golflab.engine.proposal import Proposal
from golflab.engine.session import Settings
from golflab.lab.plan import BASELINE, Arm, Plan, load_plan


def verdict_holds(condition: str, verdict: str) -> bool:
    return {"wins": "win", "loses": "loss", "inconclusive": "inconclusive"}[condition] == verdict


def plan_settings(plan: Plan, hours: float | None = None, gpu_hours: float | None = None) -> Settings:
    return Settings(preset=plan.preset, data=str(plan.data or ""), budget=plan.budget, base_overrides=list(plan.baseline),
                    seeds_min=plan.baseline_seeds.min, seeds_max=plan.baseline_seeds.max, rule=plan.rule,
                    max_experiments=None, hours=hours, metric=plan.metric, target=plan.target,
                    seed_values=plan.seed_values, gpu_hours=gpu_hours, confirm=plan.confirm_on_test,
                    replicate=False, baseline_seeds=plan.baseline_seeds.min)


class PlanProposer:
    """Without `bind(session)` (no session to ask) the conditions are not evaluated: every arm is proposed."""

    def __init__(self, plan: Plan | str | Path, preset: str | None = None, data: str | Path | None = None,
                 poll_s: float = 0.05):
        self.plan = plan if isinstance(plan, Plan) else load_plan(plan, preset=preset, data=data)
        self.pending = list(self.plan.arms)
        self.skipped: dict[str, str] = {}
        self.session: Any = None
        self.poll_s = poll_s

    def bind(self, session: Any) -> None:
        self.session = session

    def _decision(self, name: str) -> Any:
        for d in list(getattr(self.session, "decisions", [])):
            if d.name == name:
                return d
        return None

    def _blocker(self, arm: Arm) -> tuple[str | None, str]:
        """(what the arm still waits for, its reference) from the decisions so far."""
        ref = BASELINE
        for p in self.plan.arms:
            if p.priority >= arm.priority:
                break
            if not p.promote or p.name in self.skipped:
                continue
            d = self._decision(p.name)
            if d is None:
                return p.name, ref
            if d.kept:
                ref = p.name
        if arm.run_if is not None:
            dep = arm.run_if[1]
            if dep not in self.skipped and self._decision(dep) is None:
                return dep, ref
        return None, ref

    def propose(self, base: dict[str, Any]) -> Proposal | None:
        while self.pending:
            arm = self.pending[0]
            ref = BASELINE
            if self.session is not None:  # unbound: a plain queue
                wait, ref = self._blocker(arm)
                if wait is not None:  # this runs in the proposal thread: poll until it is decided
                    if not getattr(self.session, "running", False):
                        return None
                    time.sleep(self.poll_s)
                    continue
            self.pending.pop(0)
            seeds = (arm.seeds.min, arm.seeds.max)
            prop = Proposal(arm.name, list(arm.overrides), promote=arm.promote, ref=ref, crn=arm.crn, seeds=seeds)
            if arm.run_if is not None and self.session is not None:
                cond, dep = arm.run_if
                d = self._decision(dep)
                if dep in self.skipped:
                    prop.skipped = f"run_if {cond}:{dep}, and {dep} was skipped"
                elif not verdict_holds(cond, d.verdict):
                    prop.skipped = f"run_if {cond}:{dep}, but {dep} was {d.verdict or d.status}"
                if prop.skipped:
                    self.skipped[arm.name] = prop.skipped
            return prop
        return None

    def should_prune(self, proposal: Proposal, short_value: float) -> bool:
        return False

    def observe(self, proposal: Proposal, value: float | None, pruned: bool = False) -> None:
        pass
