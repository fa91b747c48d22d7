"""Small pieces of the auto loop: override merging, budget scaling, results.tsv."""

from __future__ import annotations

from golflab.auto.outputs import TSV_HEADER, results_tsv
from golflab.config import load_config
from golflab.engine.flow import Outcome
from golflab.engine.session import Decision, merge_overrides, scale_budget


def dec(idx: int, name: str, overrides: list[str], cfg_hash: str, status: str, values: dict, mean, delta, p,
        note: str, peak_mem_gb=None, **kw) -> Decision:
    o = Outcome(status, kw.pop("verdict", ""), note, values, {}, mean, delta, p, peak_mem_gb=peak_mem_gb, **kw)
    return Decision(idx, name, overrides, cfg_hash, cfg_hash, o)


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
    ds = [dec(0, "baseline", ["model.mlp=relu2"], "abcdef123456", "keep", {1: 3.0, 2: 3.2}, 3.1, None, None,
              "baseline"),
          dec(1, "t001", ["optim.matrix.lr=0.05"], "0123456789ab", "discard", {}, 3.5, None, None,
              "pruned at fidelity 0.25", 1.25, pruned=True),
          dec(2, "agent1", [], "", "rejected", {}, None, None, None, "touches protected paths")]
    ds[2].code_rev = "feedbeef" * 5
    lines = results_tsv(ds, installed_commit="1234567890").splitlines()
    assert lines[0] == TSV_HEADER and TSV_HEADER.split("\t")[:5] == ["commit", "val_bpb", "memory_gb", "status",
                                                                     "description"]
    # autoresearch's five columns first: a git commit on every row, its statuses keep / discard / crash
    assert lines[1].split("\t")[:5] == ["1234567", "3.100000", "0.0", "keep", "baseline model.mlp=relu2"]
    assert lines[2].split("\t")[:5] == ["1234567", "3.500000", "1.2", "discard", "optim.matrix.lr=0.05"]
    assert lines[2].split("\t")[5:] == ["discard", "t001", "", "pruned at fidelity 0.25"]
    assert lines[3].split("\t")[:5] == ["feedbee", "0.000000", "0.0", "discard", "-"]
    assert lines[3].split("\t")[5] == "rejected"


def test_cli_needs_exactly_one_source(tmp_path):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "golflab", "auto", "--data", str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode != 0 and "exactly one of --space, --plan or --agent-cmd" in run.stderr


def test_hours_budget_counts_earlier_sessions(tmp_path):
    from golflab.engine.budget import Budget
    from golflab.engine.store import RunRow, Store

    store = Store(tmp_path / "auto.sqlite")
    b = Budget(store, hours=1.0)
    assert b.time_reason() is None
    store.set_meta("elapsed_s", "3600.5")  # what a killed session left
    assert Budget(store, hours=1.0).time_reason().startswith("--hours budget reached")
    store.put_run(RunRow("k", 1, "ok", {"val_bpb": 1.0}, "d", wall_s=1800.0, gpus=2), [])
    store.put_run(RunRow("k", 2, "ok", {"val_bpb": 1.0}, "d", wall_s=999.0, gpus=0), [])  # a CPU slot: no GPU time
    assert store.gpu_seconds() == 3600.0
    assert Budget(store, gpu_hours=1.0).time_reason().startswith("--gpu-hours budget reached")
    assert Budget(store, gpu_hours=1.01).time_reason() is None


def test_report_markdown_has_the_table_and_the_noise_band():
    from golflab.auto.outputs import report_markdown

    ds = [dec(0, "baseline", [], "abcdef123456", "keep", {1: 3.0, 2: 3.2}, 3.1, None, None, "baseline",
              base_band=(2.8, 3.4), sd=0.1414),
          dec(1, "t001", ["model.mlp=swiglu"], "0123456789ab", "discard", {1: 2.9, 2: 3.0}, 2.95, -0.15, 0.01,
              "val win not confirmed on test", verdict="inconclusive", test_delta=0.01, test_p=0.6,
              test_verdict="inconclusive")]
    md = report_markdown(ds, "val_bpb")
    assert "| 1 | t001 | model.mlp=swiglu | 2 | 2.9500 | - | -0.1500 | 0.0100 |" in md
    assert "discard (val win not confirmed on test) | inconclusive (p = 0.6000, Δ = 0.0100) |" in md
    assert "mean ± 2σ = [2.8000, 3.4000]" in md


def test_progress_axis_spans_full_runs_not_a_pruned_short_run():
    from golflab.auto.outputs import progress_figure
    from golflab.lab.plots import pyplot

    ds = [dec(0, "baseline", [], "a" * 12, "keep", {1: 1.23, 2: 1.24}, 1.235, None, None, "baseline"),
          dec(1, "t001", ["x=1"], "b" * 12, "discard", {}, 2.8, None, None, "pruned at fidelity 0.25", pruned=True),
          dec(2, "t002", ["x=2"], "c" * 12, "keep", {1: 1.07, 2: 1.08}, 1.075, -0.16, 0.008, "win")]
    fig = progress_figure(ds, "val_bpb")
    lo, hi = fig.axes[0].get_ylim()
    pyplot().close(fig)
    assert lo < 1.07 and 1.24 < hi < 1.5  # the short run's 2.8 is drawn on the top edge, not scaled to
