"""The lab's curve plot says what it shows: train loss under a train_loss name when runs had too few val
evals, every point inside the axes (no clipped top), and an x axis that ends where the data ends."""

from __future__ import annotations

import math
import random
import subprocess

import numpy as np

from golflab.lab import plots
from golflab.lab.plan import load_plan
from golflab.lab.summary import summarize
from tests.test_lab_run import CLI, cli_env, copy_plan, run_lab


def _two_seed_plan(tmp_path):
    return copy_plan(tmp_path, edit=lambda t: t.replace("seeds = { min = 2, max = 6 }", "seeds = { min = 2, max = 2 }"))


def test_report_names_the_train_loss_fallback_for_what_it_shows(tmp_path):
    plan = _two_seed_plan(tmp_path)
    run_lab(plan, {"FAKE_NO_VAL_CURVE": "1"}).close()
    out = tmp_path / "report"
    out.mkdir()
    (out / "val_bpb_vs_time.png").write_bytes(b"stale")
    res = subprocess.run([*CLI, "report", str(plan), "--out", str(out)], env=cli_env(), capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (out / "train_loss_vs_time.png").stat().st_size > 1000 and not (out / "val_bpb_vs_time.png").exists()
    assert "train_loss_vs_time.png" in (out / "report.md").read_text()


def test_train_loss_axes_hold_all_the_data_and_end_with_it(tmp_path, monkeypatch):
    plan_path = _two_seed_plan(tmp_path)
    store = run_lab(plan_path, {"FAKE_NO_VAL_CURVE": "1"})

    def realistic(key, seed, kind):  # a real curve: a first loss several times the last, noise, unequal lengths
        rng = random.Random(f"{key}{seed}")
        return [{"kind": "train", "step": s, "loss": 1 + 4.8 * math.exp(-s / 6) + rng.gauss(0, 0.03),
                 "elapsed_s": 0.3 * s} for s in range(1, rng.randint(60, 100))] if kind == "train" else []

    monkeypatch.setattr(store, "metrics", realistic)
    figs = []

    def keep_figure(fig, path):
        figs.append(fig)
        return path

    monkeypatch.setattr(plots, "save_png", keep_figure)
    plan = load_plan(plan_path)
    out = plots.curves_plot(plan, store, summarize(plan, store), tmp_path / "val_bpb_vs_time.png")
    assert out == tmp_path / "train_loss_vs_time.png"
    ax = figs[0].axes[0]
    assert ax.get_ylabel().startswith("train loss") and "train loss" in ax.get_title()
    xs = np.concatenate([line.get_xdata() for line in ax.get_lines()])
    ys = np.concatenate([line.get_ydata() for line in ax.get_lines()])
    assert ax.get_xlim() == (xs.min(), xs.max())
    lo, hi = ax.get_ylim()
    assert lo <= ys.min() and ys.max() <= hi  # nothing clipped
    assert ax.get_yscale() == "log"
