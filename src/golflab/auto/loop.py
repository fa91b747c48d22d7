"""The auto loop: propose a change, run it on the baseline's seeds (common random numbers), judge it
with the lab's paired test, add seeds while the sequential rule says more could decide, confirm a win on
the test split, keep only confirmed wins.

Unlike a keep-if-lower-on-one-run loop, a change is KEPT only when `compare()` calls it a win
(p < alpha on shared seeds, confirmed on held-out data); the kept overrides (and code) then define the
new baseline. Every run and decision is stored; a rerun replays finished runs from the store. The
scheduling (slots, proposals ahead, budgets) lives in `golflab.auto.engine`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from golflab.auto.proposers import Proposer
from golflab.auto.store import AutoStore
from golflab.config.loader import config_hash
from golflab.config.schema import RunConfig
from golflab.errors import GolflabError
from golflab.lab.outcome import ALSO_TEST


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
    max_experiments: int | None = 12
    hours: float | None = None
    metric: str = "val_bpb"
    first_seed: int = 1
    gpu_hours: float | None = None
    confirm: bool = True  # a val win must also win on the test split of the same runs
    lookahead: int | None = None  # unclaimed proposals kept ready (default: the number of slots)


@dataclass
class Decision:
    idx: int
    name: str
    overrides: list[str]  # the proposal's own overrides
    cfg_hash: str
    status: str  # keep / discard / crash / rejected; the baseline row is "keep"
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
    verdict: str = ""  # win / loss / inconclusive on val (win only if confirmed on test)
    test_delta: float | None = None
    test_p: float | None = None
    test_verdict: str = ""  # the same paired test on the test split ("" = not run)
    sd: float | None = None  # σ of the values across seeds
    base_idx: int = 0  # the decision whose kept config was the baseline this was judged against

    @property
    def pruned(self) -> bool:
        """Discarded after its short-fidelity run: its value is not from a full-budget run."""
        return self.note.startswith("pruned")


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


def run_key(cfg_hash: str, code_rev: str) -> str:
    """A run's identity without its seed: the config hash, plus the code commit for a code proposal."""
    return f"{cfg_hash}-{code_rev[:12]}" if code_rev else cfg_hash


class AutoLoop:
    """The search's state, as proposers see it through `bind(loop)`: `decisions` (committed, idx order),
    `kept_overrides`, `base_code`, `base_code_rev`, `s` (settings), `out`; and `engine` while running."""

    def __init__(self, settings: AutoSettings, proposer: Proposer, out: Path, log: Any = None,
                 executor: Any = None, slots: list | None = None, poll_s: float = 0.1):
        from golflab.lab.executor import Executor, make_slots

        self.s = settings
        self.proposer = proposer
        self.out = out
        self.store = AutoStore(out / "auto.sqlite")
        self.log = log or (lambda msg: None)
        self.executor = executor or Executor()
        self.slots = slots or make_slots(None)
        cpu_slots = len(self.slots) > 1 and not any(s.gpus for s in self.slots)
        if cpu_slots and "OMP_NUM_THREADS" not in {**os.environ, **self.executor.extra_env}:
            # parallel CPU runs share the cores instead of each spawning a thread per core
            threads = str(max(1, (os.cpu_count() or 1) // len(self.slots)))
            self.executor = dataclasses.replace(self.executor, extra_env={**self.executor.extra_env,
                                                                          "OMP_NUM_THREADS": threads})
        self.poll_s = poll_s
        self.decisions: list[Decision] = []
        self.seeds = list(range(settings.first_seed, settings.first_seed + settings.seeds_max))
        self.kept_overrides: list[str] = list(settings.base_overrides)
        self.base_code: Path | None = None  # a kept code proposal's checkout (None: the installed golflab)
        self.base_code_rev = ""
        self.engine: Any = None
        self.stop_reason = ""
        self.running = False  # True while run_loop runs (a waiting proposer gives up when it turns False)
        self._ident = lru_cache(maxsize=4096)(self._ident_uncached)

    # -- configs and run identities
    def config(self, overrides: list[str], seed: int, fidelity: float = 1.0) -> RunConfig:
        from golflab.config import load_config

        harness = [ALSO_TEST] if self.s.confirm else []
        cfg = load_config(preset=self.s.preset, overrides=[*overrides, *harness, f"seed={seed}"],
                          budget=self.s.budget, extra={"data": {"path": str(self.s.data)}})
        if fidelity < 1.0:
            scale_budget(cfg, fidelity)
        return cfg

    def _ident_uncached(self, overrides: tuple[str, ...], code_rev: str, fidelity: float) -> tuple[str, str]:
        h = config_hash(self.config(list(overrides), 0, fidelity), include_seed=False)
        return h, run_key(h, code_rev)

    def ident(self, overrides: list[str] | tuple[str, ...], code_rev: str, fidelity: float = 1.0) -> tuple[str, str]:
        """(config hash without seed, run key) of a config under a code revision."""
        return self._ident(tuple(overrides), code_rev, fidelity)

    # -- the loop
    def run_loop(self) -> list[Decision]:
        """Run the search until a budget stops it or the proposer is exhausted; `stop_reason` says which."""
        from golflab.auto.engine import Engine

        self._check_settings()
        if hasattr(self.proposer, "bind"):
            self.proposer.bind(self)
        self.engine = Engine(self)
        self.stop_reason = self.engine.run()
        return self.decisions

    def _check_settings(self) -> None:
        """A store belongs to one search: what decides its path must not change between sessions (the
        budgets and the slots may: a resumed search can get more time or more GPUs)."""
        s = self.s
        what = [s.preset, str(Path(s.data).resolve()), s.budget, list(s.base_overrides), s.seeds_min, s.seeds_max, s.alpha,
                s.min_effect, s.metric, s.first_seed, s.confirm]
        digest = json.dumps(what)
        old = self.store.get_meta("settings")
        if old is None:
            self.store.set_meta("settings", digest)
        elif old != digest:
            raise GolflabError(f"{self.store.path} belongs to a search with other settings ({old}); rerun with "
                               "those, or give a new --out")

    def decide(self, d: Decision) -> None:
        self.decisions.append(d)
        rec = copy.deepcopy(d.__dict__)
        rec["values"] = {str(k): v for k, v in d.values.items()}
        self.store.put_decision(d.idx, rec)
        self.log(f"{d.name}: {d.status} mean={short(d.mean)} Δ={short(d.delta)} p={short(d.p)} {d.note}")

    def write_outputs(self) -> None:
        from golflab.auto.outputs import write_outputs

        # a session stopped by its budget before replaying every stored decision still reports them all
        # (replay is deterministic, so the stored ones past this session's are the same search)
        ds = list(self.decisions)
        for rec in self.store.decisions()[len(ds):]:
            rec = {k: v for k, v in rec.items() if k in Decision.__dataclass_fields__}
            rec["values"] = {int(k): v for k, v in rec.get("values", {}).items()}
            rec["base_band"] = tuple(rec["base_band"]) if rec.get("base_band") else None
            ds.append(Decision(**rec))
        write_outputs(ds, self.out, self.s.metric, self.s)


def short(x: float | None) -> str:
    """4 significant digits, '-' for none (log lines and the CLI table)."""
    return "-" if x is None else f"{x:.4g}"
