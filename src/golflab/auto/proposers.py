"""Proposers: where `golflab auto` gets its next change from.

One interface: `propose(base) -> Proposal | None` (None: nothing left), `should_prune(p, short_value)`
after a short-budget run, and `observe(p, value, pruned)` once the proposal is judged. `base` is the
current baseline's resolved config as a nested dict (conditions of a space may refer to it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from golflab.auto.space import Param, Space, override


@dataclass
class Proposal:
    name: str
    overrides: list[str]
    fidelity: float = 1.0  # < 1: first run one seed at this fraction of the budget, then maybe prune
    token: Any = field(default=None, repr=False)  # the proposer's own handle (an Optuna trial)
    code: Path | None = None  # a checkout whose src/ the runs import golflab from (a code proposal)
    diff: str = ""  # the code change as a unified diff (stored with the decision, kept or not)
    code_rev: str = ""  # the git commit of `code` (part of a run's identity: same config, other code)
    description: str = ""  # one line: what the change is and why
    rejected: str = ""  # non-empty: the proposal failed its checks (the reason); it is recorded, not run
    promote: bool = True  # False: a win is reported but does not become the baseline (a plan arm's promote)


class Proposer(Protocol):
    """Optional hooks, called when present: `bind(loop)` once before the first proposal (the loop's
    `decisions`, `kept_overrides`, `base_code`, `base_code_rev`, `s` settings and `out` directory), and
    `kept(proposal)` after a proposal is kept (an agent proposer advances its branch)."""

    def propose(self, base: dict[str, Any]) -> Proposal | None: ...

    def should_prune(self, proposal: Proposal, short_value: float) -> bool: ...

    def observe(self, proposal: Proposal, value: float | None, pruned: bool = False) -> None: ...


def _lookup(d: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


class SpaceProposer:
    """Optuna TPE over a Space (seeded: the same history gives the same proposals, which is what makes
    a resumed search replay itself from the stored runs) with successive-halving pruning of weak
    candidates on a short-budget run."""

    def __init__(self, space: Space, seed: int = 0, fidelity: float = 0.25, n_startup: int = 4):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = space
        self.fidelity = fidelity
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup)
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
        self.study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)
        self.count = 0

    def _sample(self, trial: Any, p: Param) -> Any:
        if p.choices is not None:
            return trial.suggest_categorical(p.key, list(p.choices))
        if p.integer:
            return trial.suggest_int(p.key, int(p.low), int(p.high), log=p.log)
        return trial.suggest_float(p.key, p.low, p.high, log=p.log)

    def propose(self, base: dict[str, Any]) -> Proposal | None:
        trial = self.study.ask()
        values: dict[str, Any] = {}
        for p in self.space.params:
            if p.when is not None:
                wk, wv = p.when
                current = values[wk] if wk in values else _lookup(base, wk)
                if current != wv:
                    continue
            values[p.key] = self._sample(trial, p)
        self.count += 1
        overrides = [override(k, _round(v)) for k, v in values.items()]
        return Proposal(f"t{self.count:03d}", overrides, self.fidelity, trial)

    def should_prune(self, proposal: Proposal, short_value: float) -> bool:
        proposal.token.report(short_value, step=1)
        return bool(proposal.token.should_prune())

    def observe(self, proposal: Proposal, value: float | None, pruned: bool = False) -> None:
        import optuna

        if pruned:
            self.study.tell(proposal.token, state=optuna.trial.TrialState.PRUNED)
        elif value is None or not math.isfinite(value):
            self.study.tell(proposal.token, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(proposal.token, value)


def _round(v: Any) -> Any:
    """Floats to 4 significant digits: readable overrides, and nearby samples share a config hash."""
    if isinstance(v, float):
        return float(f"{v:.4g}")
    return v


class PlanProposer:
    """The arms of a lab plan, in priority order, as a queue. An arm with `run_if = "<wins|loses|
    inconclusive>:<arm>"` waits until that arm is decided and is proposed only if its verdict (a val win
    confirmed on test counts as a win) matches; otherwise it is not proposed and listed in `skipped`. An
    arm whose dependency was itself skipped is skipped. `promote = false` arms are never made the baseline.
    Without `bind(loop)` (no search to ask) the conditions are not evaluated: every arm is proposed."""

    def __init__(self, path: str | Path, preset: str | None = None, data: str | Path | None = None,
                 poll_s: float = 0.05):
        from golflab.lab.plan import load_plan

        self.plan = load_plan(path, preset=preset, data=data)
        self.pending = list(self.plan.arms)
        self.skipped: dict[str, str] = {}
        self.loop: Any = None
        self.poll_s = poll_s

    def bind(self, loop: Any) -> None:
        self.loop = loop

    def _verdict(self, name: str) -> str | None:
        """The decided verdict of arm `name` ("" when it has none: crash, rejected), None while pending."""
        for d in list(getattr(self.loop, "decisions", [])):
            if d.name == name:
                return d.verdict
        return None

    def propose(self, base: dict[str, Any]) -> Proposal | None:
        import time

        from golflab.lab.schedule import verdict_holds

        while self.pending:
            arm = self.pending[0]
            if arm.run_if is not None and self.loop is not None:  # unbound (no search): a plain queue
                cond, dep = arm.run_if
                if dep in self.skipped:
                    self.pending.pop(0)
                    self.skipped[arm.name] = f"run_if {cond}:{dep}, and {dep} was skipped"
                    continue
                verdict = self._verdict(dep)
                if verdict is None:  # not decided yet: wait for it (this runs in the proposal thread)
                    if not getattr(self.loop, "running", False):
                        return None
                    time.sleep(self.poll_s)
                    continue
                if not verdict_holds(cond, verdict):
                    self.pending.pop(0)
                    self.skipped[arm.name] = f"run_if {cond}:{dep}, but {dep} was {verdict or 'not judged'}"
                    continue
            self.pending.pop(0)
            return Proposal(arm.name, list(arm.overrides), promote=arm.promote)
        return None

    def should_prune(self, proposal: Proposal, short_value: float) -> bool:
        return False

    def observe(self, proposal: Proposal, value: float | None, pruned: bool = False) -> None:
        pass
