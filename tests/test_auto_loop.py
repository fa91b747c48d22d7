"""`golflab auto` end to end with the real trainer: a clearly better learning rate is kept on a
significant paired test, a bad one is discarded, and a killed search resumes without retraining."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

FAST = ["--budget", "4steps", "--set", "eval.val_every=0", "--set", "eval.stride=0", "--set",
        "artifact.enabled=false", "--set", "train.batch_tokens=2048", "--set", "optim.matrix.lr=0.002"]


def _cmd(space: Path, data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "golflab", "auto", "--space", str(space), "--data", str(data), "--preset", "tiny",
            *FAST, "--max-experiments", "3", "--seeds-min", "2", "--seeds-max", "3", "--parallel", "2", "--out", str(out), "--quiet"]


def _stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(str(db)) as con:
            return int(con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_auto_keeps_a_significant_win_and_resumes_after_a_kill(tiny_dataset, tmp_path):
    space = tmp_path / "lr.toml"
    space.write_text('[[param]]\nkey = "optim.matrix.lr"\nchoices = [0.0001, 0.05]\n')
    out = tmp_path / "auto"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    # first attempt: killed once a few runs are stored
    proc = subprocess.Popen(_cmd(space, tiny_dataset, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    deadline = time.monotonic() + 600
    while _stored(out / "auto.sqlite") < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/seed*/result.json")}
    stored_before = _stored(out / "auto.sqlite")
    assert stored_before >= 3 and len(before) >= 3
    # second attempt: finishes, replaying the stored runs
    done = subprocess.run(_cmd(space, tiny_dataset, out), capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for p, mtime in before.items():
        assert p.stat().st_mtime_ns == mtime, f"{p} was trained again"
    m = re.search(r"trained (\d+) runs this time \(\+(\d+) finished before a kill\)", done.stdout)
    assert int(m.group(1)) + int(m.group(2)) + stored_before == _stored(out / "auto.sqlite")

    rows = [line.split("\t") for line in (out / "results.tsv").read_text().splitlines()]
    assert rows[0][:5] == ["commit", "val_bpb", "memory_gb", "status", "description"]
    by_desc = {r[4].split(" (")[0]: r for r in rows[1:]}
    assert rows[1][3] == "keep" and rows[1][4].startswith("baseline")
    assert by_desc["optim.matrix.lr=0.05"][3] == "keep"
    assert by_desc["optim.matrix.lr=0.0001"][3] == "discard"
    assert all(len(r[0]) == 7 for r in rows[1:])
    # the kept change is significant by the lab's paired test
    with sqlite3.connect(str(out / "auto.sqlite")) as con:
        import json

        recs = [json.loads(r[0]) for r in con.execute("SELECT record FROM decisions ORDER BY idx")]
    win = next(r for r in recs if r["overrides"] == ["optim.matrix.lr=0.05"])
    assert win["status"] == "keep" and win["p"] < 0.05 and win["delta"] < 0
    assert (out / "progress.png").stat().st_size > 1000
