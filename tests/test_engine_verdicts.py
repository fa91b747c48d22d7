"""The error rates the lab claims, under the way the engine really uses its rules: the experiment flow
that `lab run` and `auto` execute (sequential seeds, a shared baseline, confirmation), simulated with
golflab.engine.simulate. Enough experiments per setting to tell 5% from 7.5% (SE 0.4% at 3000)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from golflab.engine.flow import Judging
from golflab.engine.simulate import Experiment, simulate_experiment, simulate_search
from golflab.lab.plan import load_plan
from golflab.lab.source import plan_settings
from golflab.stats.rules import Rule

ROOT = Path(__file__).resolve().parents[1]
SIGMA, N = 0.005, 3000


def _rules() -> list[tuple[str, Judging, Experiment, list[int]]]:
    """Every shipped plan's rule and arm designs with min seeds 2, plus parameter-golf's record rule."""
    out = []
    for name in ("mlp-activations.toml", "pgolf-ablations.toml"):
        plan = load_plan(ROOT / "plans" / name)
        j = plan_settings(plan).judging()
        for exp in {Experiment((2, a.seeds.max), a.crn) for a in plan.arms}:
            out.append((f"{name}:{exp.seeds}:{exp.crn}", j, exp, [plan.seed_of(i) for i in range(exp.seeds[1])]))
    record = Judging(Rule(alpha=0.01, min_effect=0.005), "val_loss", 2, 6)
    out.append(("record rule", record, Experiment((2, 6)), list(range(1, 7))))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("rho", [0.0, 0.8])
@pytest.mark.parametrize(("label", "j", "exp", "seeds"), _rules(), ids=lambda x: x if isinstance(x, str) else "")
def test_false_wins_stay_within_alpha_at_no_effect_and_at_min_effect(label, j, exp, seeds, rho):
    alpha = j.rule.alpha
    for effect in sorted({0.0, j.rule.min_effect}):
        r = simulate_experiment(j, exp, seeds, effect, SIGMA, rho, N, seed=11)
        bound = alpha + 2 * (alpha * (1 - alpha) / N) ** 0.5
        assert r.win_rate <= bound, f"{label} rho {rho} effect {effect}: {r.win_rate:.4f} > {bound:.4f}"


def test_the_rule_still_finds_a_real_effect():
    j = Judging(Rule(), "val_bpb", 2, 6)
    r = simulate_experiment(j, Experiment((2, 6)), list(range(1, 7)), 2 * SIGMA, SIGMA, 0.8, 1000, seed=3)
    assert r.win_rate > 0.9 and r.mean_seeds < 6


@pytest.mark.slow
@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_auto_keeps_no_no_effect_change_over_a_whole_search(rho):
    """12 no-effect candidates against one shared baseline, auto's defaults: screening at alpha on seeds
    1..4, then replication on fresh seeds at the search-wide level. P(any keep) <= alpha."""
    j = Judging(Rule(alpha=0.05), "val_bpb", 2, 4, replicate=True, horizon=12)
    n = 1500
    r = simulate_search(j, (2, 4), list(range(1, 5)), 12, 0.0, SIGMA, rho, n, seed=5)
    assert r.win_rate <= 0.05 + 2 * (0.05 * 0.95 / n) ** 0.5
    # without the replication the same search keeps a no-effect change far more often
    free = simulate_search(dataclasses.replace(j, replicate=False), (2, 4), list(range(1, 5)), 12, 0.0, SIGMA, rho,
                           300, seed=5)
    assert free.win_rate > 0.15


def test_lab_simulate_prints_per_arm_rates(tmp_path):
    res = subprocess.run([sys.executable, "-m", "golflab", "lab", "simulate", str(ROOT / "plans" / "mlp-activations.toml"),
                          "--n", "300", "--json"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out) == {"swiglu", "gelu", "silu"}
    for arm in out.values():
        assert {"false_win_rate", "power", "mean_seeds", "max_seeds"} <= set(arm)
        assert arm["false_win_rate"] < 0.15 and arm["power"] > 0.5 and 2 <= arm["mean_seeds"] <= arm["max_seeds"] == 6
    res = subprocess.run([sys.executable, "-m", "golflab", "lab", "simulate", str(ROOT / "plans" / "mlp-activations.toml"),
                          "--n", "200", "--sigma", "0.01", "--rho", "0"], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "COLUMNS": "80"})
    assert res.returncode == 0 and "false wins" in res.stdout and "swiglu" in res.stdout
