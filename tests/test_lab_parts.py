"""Executor command contract, slots, run outcome parsing, live rendering."""

import json
import sys
from pathlib import Path

from golflab.lab.executor import Executor, Slot, make_slots
from golflab.lab.live import render
from golflab.lab.outcome import log_tail, metric_value, read_metrics, run_values, time_to_target
from golflab.lab.runner import LabProgress, lab_dir_of
from golflab.lab.schedule import ArmState, LabView, dict_diff


def test_default_commands_are_the_real_trainer(tmp_path):
    ex = Executor()
    run = tmp_path / "runs" / "a" / "seed1"
    assert ex.train_cmd(run) == [sys.executable, "-m", "golflab", "train", "--config", str(run / "config.toml"),
                                 "--out", str(run)]
    assert ex.train_cmd(run, 4)[:7] == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                         "--nproc_per_node", "4", "-m"]
    assert ex.train_cmd(run, 4)[7:9] == ["golflab", "train"]
    out = run / "eval_test.json"
    assert ex.eval_cmd(run, "test", out) == [sys.executable, "-m", "golflab", "eval", str(run), "--split", "test",
                                             "--out", str(out)]
    assert Executor(launcher=["x", "y"]).train_cmd(run)[:3] == ["x", "y", "train"]


def test_slots_and_env(tmp_path):
    assert [s.gpus for s in make_slots([0, 1, 2, 3])] == [(0,), (1,), (2,), (3,)]
    assert [s.gpus for s in make_slots([0, 1, 2, 3, 4], procs_per_run=2)] == [(0, 1), (2, 3)]
    assert [s.label for s in make_slots(None, parallel=3)] == ["cpu0", "cpu1", "cpu2"]
    env = Executor(extra_env={"A": "1"}).env(Slot(0, (2, 3)), tmp_path)
    assert env["CUDA_VISIBLE_DEVICES"] == "2,3" and env["A"] == "1"
    assert env["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / ".inductor-cache")
    assert lab_dir_of(Path("/x/p.lab.sqlite")) == Path("/x/p.lab") and lab_dir_of(Path("/x/s.db")) == Path("/x/s.db.d")


def test_outcome_parsing(tmp_path):
    lines = [{"kind": "val", "step": 10, "val_loss": 3.5, "elapsed_s": 10.0},
             {"kind": "train", "step": 15, "loss": 3.0, "elapsed_s": 15.0},
             {"kind": "val", "step": 20, "val_loss": 3.27, "elapsed_s": 21.5},
             {"kind": "val", "step": 30, "val_loss": 3.20, "elapsed_s": 30.0}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + '\n{"kind": "va')
    metrics = read_metrics(tmp_path / "metrics.jsonl")
    assert len(metrics) == 4  # the torn last line is skipped
    assert time_to_target(metrics, 3.28) == 21.5 and time_to_target(metrics, 3.0) is None
    result = {"status": "ok", "val_bpb": 1.2, "sliding_val_bpb": float("nan"),
              "artifact": {"val_bpb": 1.21, "sliding_val_bpb": 1.19, "bytes_total": 10}}
    values = run_values(result, metrics, 3.28)
    assert values["artifact_val_bpb"] == 1.21 and values["artifact_sliding_val_bpb"] == 1.19
    assert values["time_to_target"] == 21.5
    assert metric_value(values, "val_bpb") == 1.2 and metric_value(values, "sliding_val_bpb") is None
    (tmp_path / "stdout.log").write_text("a\n\nb\nTraceback\nOOM\n")
    assert log_tail(tmp_path, 2) == "Traceback\nOOM"


def test_dict_diff():
    assert dict_diff({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 1, "c": 5}, "d": 3}) == {"a.c": 5}


def test_live_render():
    view = LabView({"baseline": ArmState("baseline", None, [], "baseline", n_seeds=2)}, pending=2)
    p = LabProgress(view, [], done=3, queued=2, mean_run_s=60.0, slots=2, best=("baseline", 1.23))
    assert p.eta_s == 60.0
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(render(p))
    text = console.export_text()
    assert "done 3" in text and "baseline (1.2300)" in text and "ETA 1m00s" in text
