"""`golflab lab noise`: how noisy is one run at a budget, and how much does pairing seeds remove?

Runs a config N times (seeds s0 .. s0+N-1) as arm A and the identical config again as arm B. With
common random numbers, B's seed k equals A's seed k: same data order, same initial weights, so the paired
differences measure only non-determinism (exactly zero on CPU). Without them (`crn=False`), B uses other
seeds, as two unrelated runs would. The spreads give the seeds each test needs to see a given effect.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golflab.config.loader import to_toml
from golflab.config.schema import RunConfig
from golflab.errors import TrainingError
from golflab.lab.executor import Executor
from golflab.lab.stats import seeds_needed

SEED_OFFSET_WITHOUT_CRN = 10_000


@dataclass
class NoiseReport:
    values_a: list[float]
    values_b: list[float]
    sd_single: float  # spread of one run's metric across seeds
    sd_paired: float  # spread of the per-seed differences B - A
    seeds_welch: float  # seeds per arm an unpaired test needs for `effect`
    seeds_paired: float  # seeds a paired test needs for `effect`
    effect: float


def run_once(cfg: RunConfig, run_dir: Path, metric: str) -> float:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.toml").write_text(to_toml(cfg), encoding="utf-8")
    proc = subprocess.run(Executor().train_cmd(run_dir), capture_output=True, text=True)
    (run_dir / "stdout.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    result_path = run_dir / "result.json"
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    if proc.returncode != 0 or result.get("status") != "ok":
        raise TrainingError(f"noise run {run_dir} failed: {result.get('error') or proc.stderr[-300:]}")
    value = result.get(metric)
    if value is None:
        raise TrainingError(f"noise run {run_dir}: result.json has no {metric!r}")
    return float(value)


def measure_noise(cfg: RunConfig, seeds: int, out: Path, crn: bool = True, metric: str = "val_bpb",
                  effect: float = 0.005, alpha: float = 0.05) -> NoiseReport:
    import copy

    a_vals, b_vals = [], []
    for k in range(seeds):
        seed = cfg.seed + k
        for arm, s, vals in (("a", seed, a_vals), ("b", seed if crn else seed + SEED_OFFSET_WITHOUT_CRN, b_vals)):
            c = copy.deepcopy(cfg)
            c.seed = s
            vals.append(run_once(c, out / arm / f"seed{s}", metric))
    a, b = np.array(a_vals), np.array(b_vals)
    sd_single = float(np.concatenate([a, b]).std(ddof=1)) if seeds >= 2 else float("nan")
    sd_paired = float((b - a).std(ddof=1)) if seeds >= 2 else float("nan")
    return NoiseReport(a_vals, b_vals, sd_single, sd_paired,
                       seeds_needed(2 * sd_single**2, effect, alpha, one_sided=False),
                       seeds_needed(sd_paired**2, effect, alpha, one_sided=False), effect)
