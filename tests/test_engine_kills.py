"""The one engine survives kill -9 at random moments: every run is trained exactly once (a child the
killed engine left running is waited for and adopted, a finished one adopted), and nothing is lost.
Fake trainer (tests/lab_fake_trainer.py), real child processes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from golflab.engine.store import Store

ROOT = Path(__file__).resolve().parents[1]
FAKE = [sys.executable, str(ROOT / "tests" / "lab_fake_trainer.py")]
PLAN = """name = "kills"
budget = "8steps"
seeds = { min = 2, max = 2 }
[baseline]
preset = "tiny"
[[arm]]
name = "swiglu"
overrides = ["model.mlp=swiglu"]
[[arm]]
name = "gelu"
overrides = ["model.mlp=gelu"]
[[arm]]
name = "silu"
overrides = ["model.mlp=silu"]
"""


def _env(log: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "FAKE_SLEEP": "2.5",
            "FAKE_LOG": str(log)}


def _kill_at_random_moments(cmd: list[str], env: dict[str, str], kills: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(kills):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 3.5))  # start-up, mid-run, between runs, while committing
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)  # the engine only: its children live on in their own sessions
        proc.wait()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _trained_once(log: Path, db: Path) -> list:
    starts = [line.split(" ", 1)[1] for line in log.read_text().splitlines() if line.startswith("train ")]
    runs = Store(db, write=False).runs()
    assert sorted(starts) == sorted({r.run_dir for r in runs}), "a run was trained twice, or one was lost"
    assert all(r.ok for r in runs)
    return runs


@pytest.mark.slow
def test_lab_run_killed_ten_times_trains_every_run_once(tmp_path):
    plan = tmp_path / "kills.toml"
    plan.write_text(PLAN)
    log = tmp_path / "fake.log"
    cmd = [sys.executable, "-m", "golflab", "lab", "run", str(plan), "--data", str(tmp_path), "--gpus", "cpu",
           "--parallel", "2", "--quiet", "--launcher", " ".join(FAKE)]
    _kill_at_random_moments(cmd, _env(log), kills=10, seed=1)
    db = tmp_path / "kills.lab.sqlite"
    runs = _trained_once(log, db)
    assert len(runs) == 8
    decided = {d["name"]: d for d in Store(db, write=False).decisions()}
    assert set(decided) == {"baseline", "swiglu", "gelu", "silu"}


@pytest.mark.slow
def test_auto_killed_ten_times_trains_every_run_once(tmp_path):
    space = tmp_path / "s.toml"
    space.write_text('[[param]]\nkey = "model.mlp"\nchoices = ["relu2", "swiglu", "gelu", "silu"]\n'
                     '[[param]]\nkey = "train.log_every"\nlow = 1\nhigh = 50\nint = true\n')
    log = tmp_path / "fake.log"
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "tests" / "auto_fake_driver.py"), str(out), str(space), "2", "4"]
    _kill_at_random_moments(cmd, _env(log), kills=10, seed=2)
    runs = _trained_once(log, out / "auto.sqlite")
    assert len(runs) >= 6
    assert len(Store(out / "auto.sqlite", write=False).decisions()) == 5
