"""Operating characteristics of the engine's own decision path, by simulation: the experiment flows that
`lab run` and `auto` execute (engine/flow.py), driven with synthetic per-seed metrics instead of runs.

Per-seed values come from golflab.stats.simulate.synthetic_values: each run has spread σ, an arm and its
reference on the same seed correlate by ρ (common random numbers; ρ = 0 for arms with crn = false), and
the arm is better by `effect`. The held-out split, where a rule reads it, is an independent draw with the
same effect. Nothing here re-implements a rule: a verdict is whatever candidate_flow returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from golflab.engine.flow import Base, Candidate, Judging, Req, candidate_flow
from golflab.engine.harness import REPLICATION_SEED_OFFSET, UNPAIRED_SEED_OFFSET
from golflab.engine.outcome import heldout_key
from golflab.engine.proposal import Proposal
from golflab.engine.store import RunRow
from golflab.stats.simulate import synthetic_arms


@dataclass(frozen=True)
class Experiment:
    """What decides an experiment's operating characteristics (arms alike in these behave alike)."""

    seeds: tuple[int, int]  # min, max
    crn: bool = True
    idx: int = 1  # its number in a search (the replication level depends on it)


@dataclass
class Rates:
    win_rate: float
    se: float  # binomial standard error of win_rate
    mean_seeds: float  # runs of the experiment itself (its reference's are shared)
    max_seeds: int
    mean_ref_runs: float

    def as_dict(self) -> dict[str, float]:
        return {"win_rate": self.win_rate, "se": self.se, "mean_seeds": self.mean_seeds, "max_seeds": self.max_seeds,
                "mean_ref_runs": self.mean_ref_runs}


def _values(rng: np.random.Generator, seeds: list[int], effects: list[float], sigma: float, rho: float
            ) -> tuple[list[dict[int, float]], dict[int, float]]:
    return synthetic_arms(rng, len(seeds), effects, sigma, rho, seeds=seeds)


class _World:
    """Answers a flow's run requests from pre-drawn values: (key, seed) -> the metric (and held-out one)."""

    def __init__(self, metric: str):
        self.metric, self.held = metric, heldout_key(metric)
        self.vals: dict[tuple[str, int], dict[str, float]] = {}

    def put(self, key: str, values: dict[int, float], test: dict[int, float] | None = None) -> None:
        for s, v in values.items():
            row = {self.metric: v}
            if test is not None:
                row[self.held] = test[s]
            self.vals[(key, s)] = row

    def answer(self, reqs: list[Req]) -> dict[Req, RunRow]:
        return {r: RunRow(r.key, r.seed, "ok", self.vals[(r.key, r.seed)], "") for r in reqs}


def _draw(world: _World, rng: np.random.Generator, j: Judging, seeds: list[int], keys: list[str],
          effects: list[float], sigma: float, rho: float, crn: bool = True, offset: int = 0) -> None:
    """Values of the arms `keys` and of their shared baseline ("ref") on `seeds` (+ offset). Arms without
    common random numbers run on other seeds, independent of the baseline's."""
    fresh = [s + offset for s in seeds]
    r, shift = (rho, 0) if crn else (0.0, UNPAIRED_SEED_OFFSET)
    vals, ref = _values(rng, fresh, effects, sigma, r)
    tvals, tref = _values(rng, fresh, effects, sigma, r) if j.confirm_test else ([None] * len(keys), None)
    world.put("ref", ref, tref)
    for k, v, t in zip(keys, vals, tvals, strict=True):
        world.put(k, {s + shift: x for s, x in v.items()}, {s + shift: x for s, x in t.items()} if t else None)


def _run(flow, world: _World) -> tuple:
    """Drive one flow to its Outcome, answering every request from the world; count the runs it asked for."""
    asked: set[tuple[str, int]] = set()
    try:
        w = flow.send(None)
        while True:
            asked.update((r.key, r.seed) for r in w)
            w = flow.send(world.answer(w))
    except StopIteration as stop:
        return stop.value, asked


def _candidate(name: str, exp: Experiment, key: str = "arm") -> Candidate:
    prop = Proposal(name, [], ref=None, crn=exp.crn, seeds=exp.seeds)
    base = Base(0, "baseline", (), None, "", "ref")
    return Candidate(exp.idx, prop, base, (), key, key, None, "", True)


def simulate_experiment(j: Judging, exp: Experiment, seeds: list[int], effect: float, sigma: float, rho: float,
                        n_sims: int, seed: int = 0) -> Rates:
    """P(the flow returns a win) for one experiment against its reference at true improvement `effect`."""
    rng = np.random.default_rng(seed)
    wins, own, ref_runs, most = 0, 0, 0, 0
    for _ in range(n_sims):
        world = _World(j.metric)
        _draw(world, rng, j, seeds, ["arm"], [effect], sigma, rho, exp.crn)
        if j.replicate:
            _draw(world, rng, j, seeds, ["arm"], [effect], sigma, rho, exp.crn, REPLICATION_SEED_OFFSET)
        out, asked = _run(candidate_flow(_candidate("arm", exp), j, seeds, None), world)
        wins += out.verdict == "win"
        n = sum(k == "arm" for k, _ in asked)
        own, most, ref_runs = own + n, max(most, n), ref_runs + sum(k == "ref" for k, _ in asked)
    p = wins / n_sims
    return Rates(p, math.sqrt(p * (1 - p) / n_sims), own / n_sims, most, ref_runs / n_sims)


def simulate_search(j: Judging, exp_seeds: tuple[int, int], seeds: list[int], n_candidates: int, effect: float,
                    sigma: float, rho: float, n_sims: int, seed: int = 0) -> Rates:
    """P(a search keeps at least one of n_candidates changes, each with true improvement `effect`), every
    candidate judged by the engine's flow against one shared baseline (its runs reused by all)."""
    rng = np.random.default_rng(seed)
    any_keep, own, most = 0, 0, 0
    keys = [f"c{i}" for i in range(1, n_candidates + 1)]
    for _ in range(n_sims):
        world = _World(j.metric)
        _draw(world, rng, j, seeds, keys, [effect] * n_candidates, sigma, rho)
        if j.replicate:
            _draw(world, rng, j, seeds, keys, [effect] * n_candidates, sigma, rho, offset=REPLICATION_SEED_OFFSET)
        kept = False
        for i, k in enumerate(keys, start=1):
            out, asked = _run(candidate_flow(_candidate(k, Experiment(exp_seeds, True, i), k), j, seeds, None), world)
            kept |= out.status == "keep"
            n = sum(a == k for a, _ in asked)
            own, most = own + n, max(most, n)
        any_keep += kept
    p = any_keep / n_sims
    return Rates(p, math.sqrt(p * (1 - p) / n_sims), own / (n_sims * n_candidates), most, 0.0)


def noise_of(runs: list[RunRow], metric: str, keys_by_arm: dict[str, tuple[str, str]]) -> tuple[float | None, float | None]:
    """(σ of one run, ρ between an arm and its reference on shared seeds) measured in a store: σ from the
    reference runs of every arm, ρ pooled over arms with at least 3 shared seeds (None: not measurable)."""
    by: dict[str, dict[int, float]] = {}
    for r in runs:
        v = r.value(metric)
        if v is not None and math.isfinite(v):
            by.setdefault(r.key, {})[r.seed] = v
    sds, pairs = [], []
    for key, ref_key in keys_by_arm.values():
        ref = by.get(ref_key, {})
        if len(ref) >= 2:
            sds.append(float(np.std(list(ref.values()), ddof=1)))
        arm = by.get(key, {})
        shared = sorted(set(arm) & set(ref))
        if len(shared) >= 3:
            a, b = np.array([arm[s] for s in shared]), np.array([ref[s] for s in shared])
            pairs.append(((a - a.mean()), (b - b.mean())))
    sigma = float(np.mean(sds)) if sds else None
    rho = None
    if pairs:
        num = sum(float(x @ y) for x, y in pairs)
        den = math.sqrt(sum(float(x @ x) for x, _ in pairs) * sum(float(y @ y) for _, y in pairs))
        rho = max(0.0, min(0.99, num / den)) if den > 0 else None
    return sigma, rho
