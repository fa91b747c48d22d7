"""Operating characteristics of a design by simulation: false-win rate, power, seeds spent.

simulate_design drives Design.look exactly as the engine does: look at min_seeds, then add one seed
per arm while the verdict is "continue". synthetic_values is the generator alone, so a caller (the
lab's `simulate` command) can drive its own decision flow on the same values.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from golflab.stats.rules import Rule
from golflab.stats.sequential import Design, Look

LEVEL = 1.2  # the metric's level (a val_bpb); only its rounding scale matters


def synthetic_values(rng: np.random.Generator, n: int, effect: float, sigma: float, rho: float,
                     level: float = LEVEL, seeds: list[int] | None = None
                     ) -> tuple[dict[int, float], dict[int, float]]:
    """Per-seed (arm, ref) metrics: each run has sd sigma; arm and ref on seed k correlate by rho;
    the arm is better (lower) by `effect` on average."""
    (arm,), ref = synthetic_arms(rng, n, [effect], sigma, rho, level, seeds)
    return arm, ref


def synthetic_arms(rng: np.random.Generator, n: int, effects: list[float], sigma: float, rho: float,
                   level: float = LEVEL, seeds: list[int] | None = None
                   ) -> tuple[list[dict[int, float]], dict[int, float]]:
    """Several arms against one shared baseline on the same seeds (e.g. an auto search's candidates):
    every pair of runs on seed k correlates by rho, arm i is better by effects[i] on average."""
    seeds = list(range(1, n + 1)) if seeds is None else seeds
    shared = rng.standard_normal(n) * math.sqrt(rho)
    own = rng.standard_normal((len(effects) + 1, n)) * math.sqrt(1 - rho)
    ref = level + sigma * (shared + own[-1])
    arms = [dict(zip(seeds, (level - e + sigma * (shared + own[i])).tolist(), strict=True))
            for i, e in enumerate(effects)]
    return arms, dict(zip(seeds, ref.tolist(), strict=True))


def simulate_design(rule: Rule, min_seeds: int, max_seeds: int, effect: float, sigma: float, rho: float,
                    n_sims: int = 5000, seed: int = 0) -> dict:
    """Rates of each verdict and the seeds per arm spent, over n_sims seeded experiments.

    effect is the true improvement. For a target rule the arm's mean is target - effect; for a
    reference rule each experiment draws fresh reference values (as many as rule.reference holds) at
    the arm's level + effect, so the rate is over the reference's noise too.
    """
    rng = np.random.default_rng(seed)
    design = Design(rule, min_seeds, max_seeds)
    counts = {"win": 0, "loss": 0, "inconclusive": 0}
    seeds_used = np.empty(n_sims, int)
    level = rule.target if rule.target is not None else LEVEL  # reference rules: arm at ref level - effect
    for i in range(n_sims):
        arm_all, ref_all = synthetic_values(rng, max_seeds, effect, sigma, rho, level)
        if rule.reference is not None:
            ref_vals = level + sigma * rng.standard_normal(len(rule.reference))
            design = Design(dataclasses.replace(rule, reference=tuple(ref_vals.tolist())), min_seeds, max_seeds)
        look = run_design(design, arm_all, ref_all if rule.kind == "arm" else None)
        counts[look.verdict] += 1
        seeds_used[i] = look.n
    win = counts["win"] / n_sims
    null = effect <= rule.min_effect
    return {"win_rate": win, "false_win_rate": win if null else None, "power": None if null else win,
            "loss_rate": counts["loss"] / n_sims, "inconclusive_rate": counts["inconclusive"] / n_sims,
            "se": math.sqrt(win * (1 - win) / n_sims), "mean_seeds": float(seeds_used.mean()),
            "max_seeds": int(seeds_used.max()), "n_sims": n_sims}


def run_design(design: Design, arm_all: dict[int, float], ref_all: dict[int, float] | None) -> Look:
    """The engine's flow on given values: look at min seeds, add one seed per arm while "continue".
    Seeds are taken in the dicts' order."""
    arm: dict[int, float] = {}
    ref: dict[int, float] = {}
    ref_seeds = list(ref_all) if ref_all is not None else []
    for i, s in enumerate(arm_all):
        arm[s] = arm_all[s]
        if ref_all is not None:
            ref[ref_seeds[i]] = ref_all[ref_seeds[i]]
        if i + 1 < design.min_seeds:
            continue
        look = design.look(arm, ref if ref_all is not None else None)
        if look.verdict != "continue":
            break
    return look


def power_table(n_sims: int = 5000, sigma: float = 0.005, seed: int = 0) -> list[dict]:
    """docs/verdicts.md's table: false-win rate (no effect) and power at 2 sigma, rho 0 and 0.8."""
    designs = [("default: alpha 0.05, seeds 2..6, obf, futility", Rule(), 2, 6),
               ("alpha 0.01, seeds 2..6", Rule(alpha=0.01), 2, 6),
               ("alpha 0.05, seeds 2..6, no futility", Rule(futility=False), 2, 6),
               ("alpha 0.05, seeds 2..6, pocock", Rule(spending="pocock"), 2, 6),
               ("alpha 0.05, seeds 2..10", Rule(), 2, 10),
               ("fixed 6 seeds, alpha 0.05", Rule(), 6, 6),
               ("fixed 2 seeds, alpha 0.05", Rule(), 2, 2)]
    rows = []
    for name, rule, lo, hi in designs:
        for rho in (0.0, 0.8):
            h0 = simulate_design(rule, lo, hi, 0.0, sigma, rho, n_sims, seed)
            h1 = simulate_design(rule, lo, hi, 2 * sigma, sigma, rho, n_sims, seed + 1)
            rows.append({"design": name, "rho": rho, "false_win_rate": h0["false_win_rate"],
                         "seeds_h0": h0["mean_seeds"], "power": h1["power"], "seeds_h1": h1["mean_seeds"]})
    return rows


if __name__ == "__main__":  # python -m golflab.stats.simulate: the table in docs/verdicts.md
    print("| design | rho | false wins (no effect) | mean seeds | power at 2σ | mean seeds |")
    print("|---|---|---|---|---|---|")
    for r in power_table():
        print(f"| {r['design']} | {r['rho']} | {r['false_win_rate']:.1%} | {r['seeds_h0']:.2f} | "
              f"{r['power']:.1%} | {r['seeds_h1']:.2f} |")
