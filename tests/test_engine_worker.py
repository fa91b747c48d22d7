"""The persistent worker (golflab/cli/worker.py) through the local backend: a run in a worker gives exactly the
result of the same run in a fresh process, run after run; a failing job fails alone."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from golflab.config import load_config, to_toml
from golflab.engine.backend import RunSpec, make_slots
from golflab.engine.local import LocalBackend

FAST = ["eval.val_every=0", "eval.stride=0", "artifact.enabled=false", "train.batch_tokens=2048"]


def _toml(data: Path, seed: int) -> str:
    return to_toml(load_config(preset="tiny", budget="4steps", overrides=[*FAST, f"seed={seed}"],
                               extra={"data": {"path": str(data)}}))


def _wait(backend: LocalBackend, n: int, timeout: float = 600) -> list:
    out, end = [], time.time() + timeout
    while len(out) < n and time.time() < end:
        out += backend.poll()
        time.sleep(0.05)
    assert len(out) == n, "runs did not finish"
    return out


def _losses(run_dir: Path) -> list[float]:
    return [json.loads(x)["loss"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()
            if json.loads(x).get("kind") == "train"]


def test_a_run_in_a_worker_is_bit_identical_to_a_fresh_process(tiny_dataset, tmp_path):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "config.toml").write_text(_toml(tiny_dataset, 1))
    res = subprocess.run([sys.executable, "-m", "golflab", "train", "--config", str(fresh / "config.toml"), "--out",
                          str(fresh)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]

    backend = LocalBackend(make_slots(None), tmp_path, workers=True)
    try:
        specs = [RunSpec("k", s, tmp_path / f"w{i}", _toml(tiny_dataset, s)) for i, s in enumerate((2, 1, 1))]
        pids = []
        for spec in specs:  # one after another on the one slot: the same worker serves all three
            backend.submit(spec)
            pids.append(backend.active[spec.ident].pid)
            (out,) = _wait(backend, 1)
            assert out.status == "ok", out.error
        assert len(set(pids)) == 1
        want = json.loads((fresh / "result.json").read_text())
        for run in (tmp_path / "w1", tmp_path / "w2"):  # seed 1 after seed 2 ran in the same process
            got = json.loads((run / "result.json").read_text())
            assert (got["val_loss"], got["val_bpb"]) == (want["val_loss"], want["val_bpb"])
            assert _losses(run) == _losses(fresh)
        assert (tmp_path / "w1" / "stdout.log").stat().st_size > 0  # each job's output in its own log

        bad = RunSpec("k", 9, tmp_path / "bad", "this is not toml = [")
        backend.submit(bad)
        (out,) = _wait(backend, 1)
        assert out.status in ("crashed", "failed")
        good = RunSpec("k", 3, tmp_path / "after", _toml(tiny_dataset, 3))
        backend.submit(good)
        (out,) = _wait(backend, 1)
        assert out.status == "ok"  # the bad job failed alone
    finally:
        backend.close()
