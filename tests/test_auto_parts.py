"""Small pieces of the auto loop: override merging, budget scaling, results.tsv."""

from __future__ import annotations

from golflab.auto.loop import Decision, merge_overrides, scale_budget
from golflab.auto.outputs import TSV_HEADER, results_tsv
from golflab.config import load_config


def test_later_overrides_replace_earlier_ones_of_the_same_key():
    assert merge_overrides(["model.mlp=relu2", "optim.matrix.lr=0.01"], ["model.mlp=swiglu"]) == [
        "model.mlp=swiglu", "optim.matrix.lr=0.01"]


def test_fidelity_scales_the_set_budget_only():
    cfg = load_config(preset="tiny", budget="8steps")
    scale_budget(cfg, 0.25)
    assert cfg.budget.steps == 2 and cfg.budget.seconds == 0
    cfg = load_config(preset="tiny", budget="40s")
    scale_budget(cfg, 0.25)
    assert cfg.budget.seconds == 10.0 and cfg.budget.steps == 0


def test_results_tsv_rows():
    ds = [Decision(0, "baseline", ["model.mlp=relu2"], "abcdef123456", "keep", {1: 3.0, 2: 3.2}, 3.1, None, None,
                   "baseline"),
          Decision(1, "t001", ["optim.matrix.lr=0.05"], "0123456789ab", "discard", {}, 3.5, None, None,
                   "pruned at fidelity 0.25", 1.25)]
    lines = results_tsv(ds).splitlines()
    assert lines[0] == TSV_HEADER
    assert lines[1].split("\t") == ["abcdef1", "3.100000", "0.0", "keep", "baseline model.mlp=relu2"]
    assert lines[2].split("\t") == ["0123456", "3.500000", "1.2", "discard",
                                    "optim.matrix.lr=0.05 (pruned at fidelity 0.25)"]


def test_cli_needs_exactly_one_source(tmp_path):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "golflab", "auto", "--data", str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode != 0 and "exactly one of --space, --plan or --agent-cmd" in run.stderr


def test_hours_budget_counts_earlier_sessions(tmp_path):
    from golflab.auto.budget import Budget
    from golflab.auto.store import AutoStore, RunRow

    store = AutoStore(tmp_path / "auto.sqlite")
    b = Budget(store, hours=1.0)
    assert b.time_reason() is None
    store.set_meta("elapsed_s", "3600.5")  # what a killed session left
    assert Budget(store, hours=1.0).time_reason().startswith("--hours budget reached")
    store.put_run("k", 1, RunRow("ok", 1.0, None, 1.1, wall_s=1800.0, gpus=2), "d")
    store.put_run("k", 2, RunRow("ok", 1.0, None, 1.1, wall_s=999.0, gpus=0), "d")  # a CPU slot: no GPU time
    assert store.gpu_seconds() == 3600.0
    assert Budget(store, gpu_hours=1.0).time_reason().startswith("--gpu-hours budget reached")
    assert Budget(store, gpu_hours=1.01).time_reason() is None


def test_report_markdown_has_the_table_and_the_noise_band():
    from golflab.auto.outputs import report_markdown

    ds = [Decision(0, "baseline", [], "abcdef123456", "keep", {1: 3.0, 2: 3.2}, 3.1, None, None, "baseline",
                   base_band=(2.8, 3.4), sd=0.1414),
          Decision(1, "t001", ["model.mlp=swiglu"], "0123456789ab", "discard", {1: 2.9, 2: 3.0}, 2.95, -0.15, 0.01,
                   "val win not confirmed on test", verdict="inconclusive", test_delta=0.01, test_p=0.6,
                   test_verdict="inconclusive")]
    md = report_markdown(ds, "val_bpb")
    assert "| 1 | t001 | model.mlp=swiglu | 2 | 2.9500 | - | -0.1500 | 0.0100 |" in md
    assert "discard (val win not confirmed on test) | inconclusive (p = 0.6000, Δ = 0.0100) |" in md
    assert "mean ± 2σ = [2.8000, 3.4000]" in md


def test_progress_axis_spans_full_runs_not_a_pruned_short_run():
    from golflab.auto.outputs import progress_figure
    from golflab.lab.plots import pyplot

    ds = [Decision(0, "baseline", [], "a" * 12, "keep", {1: 1.23, 2: 1.24}, 1.235, None, None, "baseline"),
          Decision(1, "t001", ["x=1"], "b" * 12, "discard", {}, 2.8, None, None, "pruned at fidelity 0.25"),
          Decision(2, "t002", ["x=2"], "c" * 12, "keep", {1: 1.07, 2: 1.08}, 1.075, -0.16, 0.008, "win")]
    assert ds[1].pruned and not ds[2].pruned
    fig = progress_figure(ds, "val_bpb")
    lo, hi = fig.axes[0].get_ylim()
    pyplot().close(fig)
    assert lo < 1.07 and 1.24 < hi < 1.5  # the short run's 2.8 is drawn on the top edge, not scaled to
