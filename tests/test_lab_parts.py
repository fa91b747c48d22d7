"""Executor command contract, slots, run outcome parsing, live rendering."""

import json
import sys
from pathlib import Path

from golflab.engine.backend import Executor, Slot, make_slots
from golflab.engine.outcome import log_tail, metric_value, read_metrics, run_values, time_to_target
from golflab.lab.live import render
from golflab.lab.runner import lab_dir_of


def test_default_commands_are_the_real_trainer(tmp_path):
    ex = Executor()
    run = tmp_path / "runs" / "a" / "seed1"
    assert ex.train_cmd(run) == [sys.executable, "-m", "golflab", "train", "--config", str(run / "config.toml"),
                                 "--out", str(run)]
    assert ex.train_cmd(run, 4)[:7] == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                         "--nproc_per_node", "4", "-m"]
    assert ex.train_cmd(run, 4)[7:9] == ["golflab", "train"]
    assert Executor(launcher=["x", "y"]).train_cmd(run)[:3] == ["x", "y", "train"]


def test_slots_and_env(tmp_path):
    assert [s.gpus for s in make_slots([0, 1, 2, 3])] == [(0,), (1,), (2,), (3,)]
    assert [s.gpus for s in make_slots([0, 1, 2, 3, 4], procs_per_run=2)] == [(0, 1), (2, 3)]
    assert [s.label for s in make_slots(None, parallel=3)] == ["cpu0", "cpu1", "cpu2"]
    env = Executor(extra_env={"A": "1"}).env(Slot(0, (2, 3)), tmp_path)
    assert env["CUDA_VISIBLE_DEVICES"] == "2,3" and env["A"] == "1"
    if "OMP_NUM_THREADS" not in __import__("os").environ:  # parallel CPU slots share the cores
        assert Executor().env(Slot(1), tmp_path, cpu_threads=3)["OMP_NUM_THREADS"] == "3"
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


def test_live_render(tmp_path):
    from rich.console import Console

    from golflab.engine.backend import RunSpec
    from golflab.engine.flow import Base, Candidate
    from golflab.engine.scheduler import Progress

    base = Base(0, "baseline", (), None, "", "k0")
    cands = [Candidate(0, None, base, (), "k0", "h", None, "", True),
             Candidate(1, __import__("golflab.engine.proposal", fromlist=["Proposal"]).Proposal("swiglu", []), base,
                       (), "k1", "h1", None, "", True)]
    cands[1].waiting = []
    p = Progress(cands, [RunSpec("k1", 1, tmp_path, "", label="k1 seed 1")], decided=1, stored_runs=3, slots=2,
                 draining="")
    console = Console(width=120, record=True)
    console.print(render(p))
    text = console.export_text()
    assert "decided 1" in text and "in flight 1/2" in text and "swiglu" in text and "k1 seed 1" in text


def test_a_store_of_the_old_lab_is_refused_with_what_to_do(tmp_path):
    import sqlite3

    import pytest

    from golflab.engine.store import Store
    from golflab.errors import GolflabError

    old = tmp_path / "x.lab.sqlite"
    with sqlite3.connect(old) as con:  # the lab store before the one engine
        con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, arm TEXT, seed INTEGER)")
    for write in (True, False):
        with pytest.raises(GolflabError, match=r"older golflab \(lab v1 store\).*Start a new store"):
            Store(old, write=write)


def test_a_data_reference_is_checked_where_the_run_executes(tmp_path):
    from golflab.engine.backend import DataRef

    (tmp_path / "manifest.json").write_text('{"a": 1}')
    ref = DataRef.of(tmp_path)
    assert ref.sha256 and ref.problem() is None
    (tmp_path / "manifest.json").write_text('{"a": 2}')
    assert "differs from the one the plan was started with" in ref.problem()
    (tmp_path / "manifest.json").unlink()
    assert "no manifest.json" in ref.problem()


def test_seed_counts_are_whole_seeds():
    from golflab.stats import seeds_text

    assert (seeds_text(379.3), seeds_text(0.0), seeds_text(float("inf"))) == ("380", "2", "∞")
