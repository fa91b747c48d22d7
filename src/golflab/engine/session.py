"""A session of the one engine: its settings (the harness and the verdict rule), the configs and run
identities it builds, its store, and the decisions it has committed. `lab run PLAN` is a session fed by the
plan's arms (golflab.lab.source); `golflab auto` is one fed by a search space or a coding agent.

Proposers see the session through `bind(session)`: `decisions` (committed, idx order), `kept_overrides`,
`base_code`, `base_code_rev`, `s` (settings), `out`, `store`, `running`; and `engine` while it runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from golflab.config.loader import config_hash
from golflab.config.schema import RunConfig
from golflab.engine.backend import Backend
from golflab.engine.flow import Judging, Outcome
from golflab.engine.outcome import ALSO_TEST
from golflab.engine.proposal import Proposer
from golflab.engine.store import Store
from golflab.errors import GolflabError
from golflab.stats.rules import Rule

if TYPE_CHECKING:
    from golflab.engine.scheduler import Engine, Progress


@dataclass
class Settings:
    preset: str | None
    data: str
    budget: str | None = None
    base_overrides: list[str] = field(default_factory=list)
    seeds_min: int = 2
    seeds_max: int = 4
    rule: Rule = field(default_factory=Rule)  # the verdict rule (golflab.stats; docs/verdicts.md)
    max_experiments: int | None = 12
    hours: float | None = None
    metric: str = "val_bpb"
    target: float | None = None  # val loss target of metric time_to_target
    first_seed: int = 1
    seed_values: tuple[int, ...] | None = None  # explicit seed list (a plan's `seeds = [...]`)
    gpu_hours: float | None = None
    confirm: bool = False  # a val win must also win on the test split of the same runs (a plan's confirm_on_test)
    replicate: bool = True  # a win is kept only after it wins again on fresh seeds (auto; search-wide alpha)
    lookahead: int | None = None  # unclaimed proposals kept ready (default: the number of slots)
    baseline_seeds: int | None = None  # seeds of the baseline before any experiment (default: seeds_min)

    def judging(self) -> Judging:
        return Judging(self.rule, self.metric, self.seeds_min, self.seeds_max, self.confirm, self.replicate,
                       self.max_experiments)

    def seeds(self, n: int) -> list[int]:
        if self.seed_values is not None:
            return list(self.seed_values[:n])
        return list(range(self.first_seed, self.first_seed + n))

    def identity(self) -> str:
        """What decides a session's path: it must not change between resumes (budgets and slots may)."""
        what = [self.preset, str(Path(self.data).resolve()), self.budget, list(self.base_overrides), self.seeds_min,
                self.seeds_max, asdict(self.rule), self.metric, self.target, self.first_seed,
                list(self.seed_values or []), self.confirm, self.replicate, self.baseline_seeds]
        return json.dumps(what)


@dataclass
class Decision:
    """A committed experiment: who it is (name, config, code, reference) and its Outcome."""

    idx: int
    name: str
    overrides: list[str]  # the proposal's own overrides (the baseline's for idx 0)
    key: str  # run key ("" for a rejected or skipped proposal)
    cfg_hash: str
    outcome: Outcome
    code_rev: str = ""  # git commit of a code proposal ("" = the installed golflab)
    ref: str = ""  # the name of the experiment it was judged against
    ref_key: str = ""
    base_idx: int = 0  # the decision whose kept config was its reference
    diff: str = ""  # a code proposal's unified diff, stored whether kept or not
    description: str = ""

    # the outcome's most read fields, by name (reports, the agent's brief)
    @property
    def status(self) -> str:
        return self.outcome.status

    @property
    def verdict(self) -> str:
        return self.outcome.verdict

    @property
    def note(self) -> str:
        return self.outcome.note

    @property
    def mean(self) -> float | None:
        return self.outcome.mean

    @property
    def delta(self) -> float | None:
        return self.outcome.delta

    @property
    def p(self) -> float | None:
        return self.outcome.p

    @property
    def kept(self) -> bool:
        return self.idx > 0 and self.outcome.status == "keep"

    def to_record(self) -> dict[str, Any]:
        """Flat: identity fields and the outcome's side by side (the agent's brief reads either form)."""
        rec = {k: v for k, v in asdict(self).items() if k != "outcome"}
        return {**rec, **self.outcome.to_dict()}

    @staticmethod
    def from_record(rec: dict[str, Any]) -> Decision:
        own = {k: rec[k] for k in Decision.__dataclass_fields__ if k in rec and k != "outcome"}
        return Decision(**own, outcome=Outcome.from_dict(rec))


def merge_overrides(base: list[str], new: list[str]) -> list[str]:
    """Later overrides of a key replace earlier ones; order of first appearance is kept."""
    out: dict[str, str] = {}
    for item in [*base, *new]:
        out[item.split("=", 1)[0].strip()] = item
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


Log = Callable[[str], None]


class Session:
    """`store_path`: the one SQLite file; `out`: where run directories (out/runs/<key>/seed<k>) and outputs
    go. `outputs(decisions, session)` is called when the engine writes its outputs (auto: results.tsv)."""

    def __init__(self, settings: Settings, proposer: Proposer, store_path: Path, out: Path, backend: Backend,
                 log: Log | None = None, poll_s: float = 0.1,
                 outputs: Callable[[list[Decision], Session], None] | None = None, kind: str = "auto"):
        self.s = settings
        self.proposer = proposer
        self.out = out
        self.kind = kind
        self.store = Store(store_path)
        self.log: Log = log or (lambda msg: None)
        self.backend = backend
        self.poll_s = poll_s
        self.outputs = outputs
        self.decisions: list[Decision] = []
        self.kept_overrides: list[str] = list(settings.base_overrides)
        self.base_code: Path | None = None  # a kept code proposal's checkout (None: the installed golflab)
        self.base_code_rev = ""
        self.engine: Engine | None = None
        self.on_progress: Callable[[Progress], None] | None = None  # a live display's update
        self.stop_reason = ""
        self.running = False  # True while the engine runs (a waiting proposer gives up when it turns False)
        self.counts = (0, 0, 0)  # runs trained, adopted and stored, once run() returns
        self._ident = lru_cache(maxsize=4096)(self._ident_uncached)

    @property
    def seeds(self) -> list[int]:
        return self.s.seeds(self.s.seeds_max)

    # -- configs and run identities
    def config(self, overrides: list[str] | tuple[str, ...], seed: int, fidelity: float = 1.0) -> RunConfig:
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

    # -- running
    def run(self) -> list[Decision]:
        """Run until a budget stops it or the proposer is exhausted; `stop_reason` says which."""
        from golflab.engine.scheduler import Engine

        try:
            self._check_settings()
            if hasattr(self.proposer, "bind"):
                self.proposer.bind(self)
            self.engine = Engine(self, self.on_progress)
            self.stop_reason = self.engine.run()
        finally:
            self.counts = (self.store.trained, self.store.adopted, self.store.run_count())
            self.store.close()
        return self.decisions

    def _check_settings(self) -> None:
        old = self.store.get_meta("settings")
        new = self.s.identity()
        if old is None:
            self.store.set_meta("settings", new)
            self.store.set_meta("kind", self.kind)
        elif old != new:
            raise GolflabError(f"{self.store.path} belongs to a {self.store.get_meta('kind') or ''} session with other "
                               f"settings ({old}); rerun with those, or start a new store")

    def decide(self, d: Decision) -> None:
        self.decisions.append(d)
        self.store.put_decision(d.idx, d.name, d.to_record())
        o = d.outcome
        self.log(f"{d.name}: {o.status} {o.verdict} mean={short(o.mean)} Δ={short(o.delta)} p={short(o.p)} {o.note}")

    def all_decisions(self) -> list[Decision]:
        """This session's decisions plus stored ones it did not replay (a budget stopped it first)."""
        ds = list(self.decisions)
        ds += [Decision.from_record(r) for r in self.store.decisions()[len(ds):]]
        return ds

    def write_outputs(self) -> None:
        if self.outputs is not None:
            self.outputs(self.all_decisions(), self)


def short(x: float | None) -> str:
    """4 significant digits, '-' for none (log lines and the CLI table)."""
    return "-" if x is None else f"{x:.4g}"
