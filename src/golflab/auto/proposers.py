"""The search-space proposer of `golflab auto` (Optuna TPE); the interface is golflab.engine.proposal."""

from __future__ import annotations

import math
from typing import Any

from golflab.auto.space import Param, Space, override
from golflab.engine.proposal import Proposal


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
