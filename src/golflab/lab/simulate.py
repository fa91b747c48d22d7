"""`golflab lab simulate PLAN`: each arm's false-win rate, power, seeds and expected GPU-hours, from the
engine's own decision flow (golflab.engine.simulate) on synthetic metrics, with σ and ρ measured in the
plan's store when it has runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from golflab.engine.simulate import Experiment, noise_of, simulate_experiment
from golflab.engine.store import Store
from golflab.lab.plan import Plan
from golflab.lab.runner import default_store_path
from golflab.lab.source import plan_settings

DEFAULT_SIGMA, DEFAULT_RHO = 0.005, 0.5


def _measured(plan: Plan, store_path: Path | None) -> tuple[float | None, float | None, float | None]:
    """(σ, ρ, mean GPU-seconds of a run) from the plan's store, where it has runs."""
    path = Path(store_path) if store_path else default_store_path(plan)
    if not path.exists():
        return None, None, None
    store = Store(path, write=False)
    try:
        keys = {e["name"]: (e["key"], e["ref_key"]) for e in store.experiments().values() if e.get("key")}
        runs = store.runs()
        sigma, rho = noise_of(runs, plan.metric, keys)
        walls = [r.wall_s * max(1, r.gpus) for r in runs if r.ok and r.wall_s]
        return sigma, rho, (sum(walls) / len(walls) if walls else None)
    finally:
        store.close()


def simulate_plan(plan: Plan, effect: float | None, sigma: float | None, rho: float | None, n: int,
                  run_seconds: float | None = None, store_path: Path | None = None) -> dict[str, Any]:
    m_sigma, m_rho, m_secs = _measured(plan, store_path)
    notes = []
    if sigma is None:
        sigma = m_sigma or DEFAULT_SIGMA
        notes.append(f"σ = {sigma:.4g} " + ("(measured in the plan's store)" if m_sigma else "(assumed: no runs yet; "
                                           "measure it with `golflab lab noise`, or give --sigma)"))
    if rho is None:
        rho = m_rho if m_rho is not None else DEFAULT_RHO
        notes.append(f"ρ = {rho:.2f} " + ("(measured in the plan's store)" if m_rho is not None else
                                          "(assumed; give --rho)"))
    effect = 2 * sigma if effect is None else effect
    if run_seconds is None:
        run_seconds = m_secs
        if run_seconds is None:
            budget = plan.build_config([], plan.seed_of(0)).budget
            run_seconds = budget.seconds or None
            if run_seconds:
                notes.append(f"GPU-hours count {run_seconds:g} s of training per run (the budget; no measured runs)")
            else:
                notes.append("GPU-hours: the budget is not in seconds; give --run-seconds")
        else:
            notes.append(f"GPU-hours use the mean GPU seconds of the stored runs, {run_seconds:.0f} s")
    j = plan_settings(plan).judging()
    r = plan.rule
    null_effect = max(0.0, r.min_effect)
    cache: dict[Experiment, tuple[Any, Any]] = {}
    arms = []
    base_runs = 0.0
    for arm in plan.arms:
        exp = Experiment((arm.seeds.min, arm.seeds.max), arm.crn)
        if exp not in cache:
            seeds = [plan.seed_of(i) for i in range(arm.seeds.max)]
            cache[exp] = (simulate_experiment(j, exp, seeds, null_effect, sigma, rho, n, seed=1),
                          simulate_experiment(j, exp, seeds, effect, sigma, rho, n, seed=2))
        h0, h1 = cache[exp]
        base_runs = max(base_runs, h1.mean_ref_runs, h0.mean_ref_runs)
        hours = None if not run_seconds else h1.mean_seeds * run_seconds / 3600
        arms.append({"arm": arm.name, "false_win_rate": h0.win_rate, "false_win_se": h0.se, "power": h1.win_rate,
                     "mean_seeds": h1.mean_seeds, "mean_seeds_no_effect": h0.mean_seeds,
                     "max_seeds": arm.seeds.max, "min_seeds": arm.seeds.min,
                     "max_seeds_used": max(h0.max_seeds, h1.max_seeds), "gpu_hours": hours})
    null = "no effect" if null_effect == 0 else f"a true improvement of exactly min_effect = {null_effect:g}"
    caption = (f"false wins: P(win) at {null} (± 2 SE); power: P(win) at a true improvement of {effect:.4g}; "
               f"seeds and GPU-h: the arm's own runs at that effect (the baseline's are shared)")
    if run_seconds:
        notes.append(f"plan total at that effect: about {(sum(a['mean_seeds'] for a in arms) + base_runs) * run_seconds / 3600:.2f} "
                     "GPU-h (every arm plus the shared baseline runs)")
    notes.append(f"rule: alpha {r.alpha}, H0 improvement <= {r.min_effect}, {r.spending} spending, test {r.test}; "
                 "each arm's rate is per arm (docs/verdicts.md)")
    return {"arms": arms, "sigma": sigma, "rho": rho, "effect": effect, "caption": caption, "notes": notes}
