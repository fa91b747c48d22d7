"""The auto loop: propose a change, run it on the baseline's seeds (common random numbers), judge it
with the lab's paired test, add seeds while the sequential rule says more could decide, keep only wins.

Unlike a keep-if-lower-on-one-run loop, a change is KEPT only when `compare()` calls it a win
(p < alpha on shared seeds); the kept overrides then define the new baseline, whose values become
the winner's. Every run and decision is stored; a rerun replays finished runs from the store.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golflab.auto.proposers import Proposer
from golflab.auto.store import AutoStore
from golflab.config.loader import config_hash, to_dict
from golflab.config.schema import RunConfig
from golflab.errors import GolflabError

MAX_REPEATS = 20  # proposals in a row that repeat a tried config before the space counts as exhausted


@dataclass
class AutoSettings:
    preset: str | None
    data: str
    budget: str | None = None
    base_overrides: list[str] = field(default_factory=list)
    seeds_min: int = 2
    seeds_max: int = 4
    alpha: float = 0.05
    min_effect: float = 0.0
    max_experiments: int = 12
    hours: float | None = None
    metric: str = "val_bpb"
    first_seed: int = 1


@dataclass
class Decision:
    idx: int
    name: str
    overrides: list[str]  # the proposal's own overrides
    cfg_hash: str
    status: str  # keep / discard / crash; the baseline row is "keep"
    values: dict[int, float]
    mean: float | None
    delta: float | None
    p: float | None
    note: str = ""
    peak_mem_gb: float | None = None
    base_band: tuple[float, float] | None = None  # baseline mean ± 2σ when this was judged
    code_rev: str = ""  # git commit of a code proposal ("" = the installed golflab)
    diff: str = ""  # a code proposal's unified diff, stored whether kept or not
    description: str = ""


def merge_overrides(base: list[str], new: list[str]) -> list[str]:
    """Later overrides of a key replace earlier ones; order of first appearance is kept."""
    out: dict[str, str] = {}
    for item in [*base, *new]:
        key = item.split("=", 1)[0].strip()
        out[key] = item
    return list(out.values())


def scale_budget(cfg: RunConfig, fidelity: float) -> None:
    """Shrink whichever budget limits are set to `fidelity` of themselves (steps stay >= 1)."""
    b = cfg.budget
    if b.seconds:
        b.seconds = b.seconds * fidelity
    if b.steps:
        b.steps = max(1, round(b.steps * fidelity))
    if b.tokens:
        b.tokens = max(1, int(b.tokens * fidelity))


class AutoLoop:
    def __init__(self, settings: AutoSettings, proposer: Proposer, out: Path, log: Any = None):
        self.s = settings
        self.proposer = proposer
        self.out = out
        self.store = AutoStore(out / "auto.sqlite")
        self.log = log or (lambda msg: None)
        self.decisions: list[Decision] = []
        self.seeds = list(range(settings.first_seed, settings.first_seed + settings.seeds_max))
        self.kept_overrides: list[str] = list(settings.base_overrides)
        self.base_code: Path | None = None  # a kept code proposal's checkout (None: the installed golflab)
        self.base_code_rev = ""

    # -- runs -------------------------------------------------------------------------------------
    def config(self, overrides: list[str], seed: int, fidelity: float = 1.0) -> RunConfig:
        from golflab.config import load_config

        cfg = load_config(preset=self.s.preset, overrides=[*overrides, f"seed={seed}"], budget=self.s.budget,
                          extra={"data": {"path": str(self.s.data)}})
        if fidelity < 1.0:
            scale_budget(cfg, fidelity)
        return cfg

    def run(self, overrides: list[str], seed: int, fidelity: float = 1.0, code: Path | None = None,
            code_rev: str = "") -> tuple[float | None, float | None]:
        """(metric, peak memory GB) of one run; stored runs are replayed, crashes give (None, None)."""
        from golflab.lab.executor import Executor
        from golflab.lab.noise import run_once

        cfg = self.config(overrides, seed, fidelity)
        h = run_key(config_hash(cfg, include_seed=False), code_rev)
        done = self.store.get_run(h, seed)
        if done is not None:
            return done[1], done[2]
        run_dir = self.out / "runs" / h / f"seed{seed}"
        self.log(f"train {h} seed {seed}" + (f" (fidelity {fidelity:g})" if fidelity < 1 else ""))
        try:
            value, status = run_once(cfg, run_dir, self.s.metric, Executor(code_dir=code)), "ok"
        except GolflabError as exc:
            value, status = None, "crash"
            self.log(f"  crashed: {exc}")
        peak = None
        result = run_dir / "result.json"
        if result.exists():
            peak = json.loads(result.read_text()).get("peak_mem_gb")
        self.store.put_run(h, seed, status, value, peak, str(run_dir))
        self.store.trained += 1
        return value, peak

    def values(self, overrides: list[str], seeds: list[int], code: Path | None = None,
               code_rev: str = "") -> tuple[dict[int, float], float | None]:
        vals, peak = {}, None
        for s in seeds:
            v, p = self.run(overrides, s, code=code, code_rev=code_rev)
            if v is None:
                return {}, peak
            vals[s], peak = v, p if p is not None else peak
        return vals, peak

    def _time_left(self, start: float) -> bool:
        return self.s.hours is None or (time.monotonic() - start) < self.s.hours * 3600

    # -- the loop ---------------------------------------------------------------------------------
    def run_loop(self) -> list[Decision]:
        from golflab.lab.stats import compare, want_more_seeds

        start = time.monotonic()
        if hasattr(self.proposer, "bind"):
            self.proposer.bind(self)
        kept = self.kept_overrides  # bind() may have restored kept changes and set base_code
        base_vals, peak = self.values(kept, self.seeds[: self.s.seeds_min], self.base_code, self.base_code_rev)
        if not base_vals:
            raise GolflabError("the baseline run crashed; see the runs/ folder under the output directory")
        base_hash = config_hash(self.config(kept, 0), include_seed=False)
        self._decide(Decision(0, "baseline", list(kept), base_hash, "keep", base_vals, _mean(base_vals), None,
                              None, "baseline", peak, _band(base_vals), code_rev=self.base_code_rev))
        tried = {run_key(base_hash, self.base_code_rev)}
        repeats = 0
        while len(self.decisions) - 1 < self.s.max_experiments and self._time_left(start):
            prop = self.proposer.propose(to_dict(self.config(kept, 0)))
            if prop is None:
                break
            idx = len(self.decisions)
            band = _band(base_vals)
            code, rev = (prop.code, prop.code_rev) if prop.code is not None else (self.base_code, self.base_code_rev)
            extra = {"code_rev": rev, "diff": prop.diff, "description": prop.description}
            if prop.rejected:
                self.proposer.observe(prop, None)
                self._decide(Decision(idx, prop.name, prop.overrides, "", "rejected", {}, None, None, None,
                                      prop.rejected, None, band, **extra))
                continue
            cand = merge_overrides(kept, prop.overrides)
            h = config_hash(self.config(cand, 0), include_seed=False)
            key = run_key(h, rev)
            if key in tried:  # a config already judged: tell the proposer, ask again
                repeats += 1
                self.proposer.observe(prop, None if key == run_key(base_hash, self.base_code_rev) else self._known(h), False)
                if repeats >= MAX_REPEATS:
                    self.log("the space looks exhausted: every proposal repeats a tried config")
                    break
                continue
            repeats = 0
            tried.add(key)
            if prop.fidelity < 1.0:
                short, _ = self.run(cand, self.seeds[0], prop.fidelity, code, rev)
                if short is None:
                    self.proposer.observe(prop, None)
                    self._decide(Decision(idx, prop.name, prop.overrides, h, "crash", {}, None, None, None,
                                          f"crashed at fidelity {prop.fidelity:g}", None, band, **extra))
                    continue
                if self.proposer.should_prune(prop, short):
                    self.proposer.observe(prop, short, pruned=True)
                    self._decide(Decision(idx, prop.name, prop.overrides, h, "discard", {}, short, None, None,
                                          f"pruned at fidelity {prop.fidelity:g}", None, band, **extra))
                    continue
            n = self.s.seeds_min
            vals, peak = self.values(cand, self.seeds[:n], code, rev)
            while vals:
                base_vals.update(self.values(kept, [s for s in self.seeds[:n] if s not in base_vals],
                                             self.base_code, self.base_code_rev)[0])
                c = compare(vals, {s: base_vals[s] for s in vals if s in base_vals}, self.s.alpha,
                            self.s.min_effect, one_sided=True)
                if not want_more_seeds(c, n, self.s.seeds_max, self.s.alpha, self.s.min_effect, True):
                    break
                n += 1
                more, peak = self.values(cand, [self.seeds[n - 1]], code, rev)
                vals = {**vals, **more} if more else {}
            if not vals:
                self.proposer.observe(prop, None)
                self._decide(Decision(idx, prop.name, prop.overrides, h, "crash", {}, None, None, None, "crashed",
                                      None, band, **extra))
                continue
            p = c.p_paired if c.test == "paired" else c.p_welch
            delta = c.delta_paired if c.test == "paired" else c.delta
            status = "keep" if c.verdict == "win" else "discard"
            self.proposer.observe(prop, _mean(vals))
            self._decide(Decision(idx, prop.name, prop.overrides, h, status, dict(vals), _mean(vals), delta, p,
                                  c.verdict, peak, band, **extra))
            if status == "keep":
                kept, base_vals, base_hash = cand, dict(vals), h
                self.kept_overrides, self.base_code, self.base_code_rev = cand, code, rev
                if hasattr(self.proposer, "kept"):
                    self.proposer.kept(prop)
        return self.decisions

    def _known(self, h: str) -> float | None:
        for d in self.decisions:
            if d.cfg_hash == h:
                return d.mean
        return None

    def _decide(self, d: Decision) -> None:
        from golflab.auto.outputs import write_outputs

        self.decisions.append(d)
        rec = copy.deepcopy(d.__dict__)
        rec["values"] = {str(k): v for k, v in d.values.items()}
        self.store.put_decision(d.idx, rec)
        self.log(f"{d.name}: {d.status} mean={_fmt(d.mean)} Δ={_fmt(d.delta)} p={_fmt(d.p)} {d.note}")
        write_outputs(self.decisions, self.out, self.s.metric)


def run_key(cfg_hash: str, code_rev: str) -> str:
    """A run's identity without its seed: the config hash, plus the code commit for a code proposal."""
    return f"{cfg_hash}-{code_rev[:12]}" if code_rev else cfg_hash


def _mean(vals: dict[int, float]) -> float | None:
    return sum(vals.values()) / len(vals) if vals else None


def _band(vals: dict[int, float]) -> tuple[float, float] | None:
    if len(vals) < 2:
        return None
    m = _mean(vals)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals.values()) / (len(vals) - 1))
    return (m - 2 * sd, m + 2 * sd)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"
