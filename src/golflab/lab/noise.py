"""`golflab lab noise`: how noisy is one run at a budget, and how much does pairing seeds remove?

Runs a config N times (seeds s0 .. s0+N-1) as arm A and again as arm B: the identical config, or A plus
one real change (`--arm-set`). With common random numbers, B's seed k equals A's seed k: same data order,
same initial weights for the parameters they share, so for identical arms the paired differences measure
only non-determinism (exactly zero on CPU). Without them (`crn=False`), B uses other seeds, as two
unrelated runs would. The spreads give the seeds each test needs to see a given effect. A finished run
whose directory holds the same config is reused, so the with- and without-CRN measurements share arm A.
"""

from __future__ import annotations

import copy
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golflab.config.loader import to_toml
from golflab.config.schema import RunConfig
from golflab.engine.backend import Executor, Slot, prepare_run_dir
from golflab.engine.harness import UNPAIRED_SEED_OFFSET
from golflab.engine.outcome import finished_result, metric_value, read_json
from golflab.errors import TrainingError
from golflab.stats import seeds_needed


@dataclass
class NoiseReport:
    values_a: list[float]
    values_b: list[float]
    sd_single: float  # spread of one run's metric across seeds (pooled over the two arms)
    sd_paired: float  # spread of the per-seed differences B - A
    seeds_welch: float  # seeds per arm an unpaired test needs for `effect`
    seeds_paired: float  # seeds a paired test needs for `effect`
    effect: float

    @property
    def delta(self) -> float:
        return float(np.mean(self.values_b) - np.mean(self.values_a))


def run_once(cfg: RunConfig, run_dir: Path, metric: str) -> float:
    """Train cfg in its own process into run_dir; the metric from its result.json. A finished ok run
    of exactly this config in run_dir is reused, not trained again."""
    toml = to_toml(cfg)
    done = finished_result(run_dir, toml)
    if done is not None and (value := metric_value(done, metric)) is not None:
        return value
    prepare_run_dir(run_dir, toml)
    ex = Executor()  # its env shares an inductor cache among the runs beside this one's parent
    proc = subprocess.run(ex.train_cmd(run_dir), capture_output=True, text=True, env=ex.env(Slot(0), run_dir.parent.parent))
    (run_dir / "stdout.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    result = read_json(run_dir / "result.json") or {}
    if proc.returncode != 0 or result.get("status") != "ok":
        raise TrainingError(f"noise run {run_dir} failed: {result.get('error') or proc.stderr[-300:]}")
    value = result.get(metric)
    if value is None:
        raise TrainingError(f"noise run {run_dir}: result.json has no {metric!r}")
    return float(value)


def measure_noise(cfg: RunConfig, seeds: int, out: Path, crn: bool = True, metric: str = "val_bpb",
                  effect: float = 0.005, alpha: float = 0.05, cfg_b: RunConfig | None = None,
                  log=None) -> NoiseReport:
    """Arm A = cfg, arm B = cfg_b (default: cfg again), `seeds` runs each; finished runs are reused."""
    cfg_b = cfg_b if cfg_b is not None else cfg
    a_vals, b_vals = [], []
    for k in range(seeds):
        seed = cfg.seed + k
        b_seed = seed if crn else seed + UNPAIRED_SEED_OFFSET
        for arm, base, s, vals in (("a", cfg, seed, a_vals), ("b", cfg_b, b_seed, b_vals)):
            c = copy.deepcopy(base)
            c.seed = s
            vals.append(run_once(c, out / arm / f"seed{s}", metric))
            if log:
                log(f"arm {arm} seed {s}: {metric} {vals[-1]:.5f}")
    a, b = np.array(a_vals), np.array(b_vals)
    nan = float("nan")
    sd_single = float(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)) if seeds >= 2 else nan
    sd_paired = float((b - a).std(ddof=1)) if seeds >= 2 else nan
    return NoiseReport(a_vals, b_vals, sd_single, sd_paired,
                       seeds_needed(2 * sd_single**2, effect, alpha, one_sided=False),
                       seeds_needed(sd_paired**2, effect, alpha, one_sided=False), effect)
