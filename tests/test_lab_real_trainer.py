"""The shipped autoresearch plan end to end with the real trainer (tiny preset, a few steps per run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mlp_activations_plan_runs_with_the_real_trainer(tiny_dataset, tmp_path):
    text = (ROOT / "plans" / "mlp-activations.toml").read_text()
    text = text.replace('budget = "300steps"', 'budget = "6steps"').replace("max = 6", "max = 2")
    plan = tmp_path / "mlp.toml"
    plan.write_text(text)
    run = subprocess.run([sys.executable, "-m", "golflab", "lab", "run", str(plan), "--data", str(tiny_dataset),
                          "--quiet"], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    results = sorted(tmp_path.glob("mlp-activations.lab/runs/*/seed*/result.json"))
    arms = {p.parent.parent.name.rsplit("-", 1)[0] for p in results}
    assert {"baseline", "swiglu"} <= arms and len(results) >= 4
    status = subprocess.run([sys.executable, "-m", "golflab", "lab", "status", str(plan), "--data", str(tiny_dataset)],
                            capture_output=True, text=True, timeout=300)
    assert status.returncode == 0 and "swiglu" in status.stdout
    report = subprocess.run([sys.executable, "-m", "golflab", "lab", "report", str(plan), "--data", str(tiny_dataset),
                             "--out", str(tmp_path / "report")], capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    md = (tmp_path / "report" / "report.md").read_text()
    assert "swiglu" in md and "Runs" in md
    assert list((tmp_path / "report").glob("*.png"))


def test_identical_arms_with_common_random_numbers_are_bit_identical(tiny_dataset, tmp_path):
    from golflab.config import load_config
    from golflab.lab.noise import measure_noise

    cfg = load_config(preset="tiny", budget="4steps", extra={"data": {"path": str(tiny_dataset)}},
                      overrides=["eval.val_every=0", "eval.stride=0", "artifact.enabled=false"])
    paired = measure_noise(cfg, 2, tmp_path / "crn", crn=True)
    assert paired.values_a == paired.values_b  # same seed, same data order, same init: exactly equal
    assert paired.sd_paired == 0.0 and paired.sd_single > 0
    trained_a = {p: p.stat().st_mtime_ns for p in (tmp_path / "crn" / "a").glob("seed*/result.json")}
    unpaired = measure_noise(cfg, 2, tmp_path / "crn", crn=False)  # same folder: arm A is reused
    assert unpaired.values_a == paired.values_a and unpaired.values_b != unpaired.values_a
    assert len(trained_a) == 2 and all(p.stat().st_mtime_ns == t for p, t in trained_a.items())
