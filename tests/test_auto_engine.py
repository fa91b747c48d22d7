"""The auto engine on the fake trainer (real child processes, seconds per test): concurrency, proposals
ahead, re-basing, GPU-hour budget, kill -9 and resume, test-split confirmation, plan run_if / promote."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from golflab.engine.backend import Slot
from golflab.engine.proposal import Proposal
from golflab.lab.source import PlanProposer
from tests.auto_fake_driver import fake_session

ROOT = Path(__file__).resolve().parents[1]


class Scripted:
    """Proposes a fixed list; records how many runs were in flight whenever it was asked."""

    def __init__(self, overrides: list[list[str]], delay: float = 0.0):
        self.todo = [Proposal(f"p{i + 1}", o) for i, o in enumerate(overrides)]
        self.delay = delay
        self.busy_when_asked: list[int] = []
        self.loop = None

    def bind(self, loop) -> None:
        self.loop = loop

    def propose(self, base):
        self.busy_when_asked.append(len(self.loop.engine.active) if self.loop.engine else 0)
        time.sleep(self.delay)
        return self.todo.pop(0) if self.todo else None

    def should_prune(self, p, v):
        return False

    def observe(self, p, v, pruned=False):
        pass


def fake_env(monkeypatch, **env: str) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def test_two_slots_overlap_candidates_ahead_and_rebase_on_a_keep(tmp_path, monkeypatch):
    fake_env(monkeypatch, FAKE_SLEEP="0.3")
    mlps = ["swiglu", "gelu", "silu", "relu2"]
    prop = Scripted([[f"model.mlp={m}", "train.log_every=7"] for m in mlps], delay=0.1)
    loop = fake_session(tmp_path / "a", prop, parallel=2, seeds_max=3)
    ds = loop.run()
    eng = loop.engine
    assert eng.peak_busy == 2 and eng.peak_cands >= 2  # both slots busy, two candidates' runs at once
    assert max(prop.busy_when_asked) > 0  # proposals were asked while runs trained
    assert [d.idx for d in ds] == list(range(len(mlps) + 1))
    by = {d.name: d for d in ds}
    assert by["p1"].status == "keep" and by["p1"].verdict == "win" and by["p1"].outcome.rep_verdict == "win"
    for name in ("p2", "p3", "p4"):  # started on the old baseline, judged against swiglu after the keep
        assert by[name].base_idx == 1 and by[name].status == "discard"
    assert "stopped" not in loop.stop_reason and loop.stop_reason
    md = (tmp_path / "a" / "report.md").read_text()
    assert all(f"| {d.idx} | {d.name} |" in md for d in ds)


def test_gpu_hours_budget_stops_the_search_and_lets_runs_finish(tmp_path, monkeypatch):
    fake_env(monkeypatch, FAKE_SLEEP="0.4")
    prop = Scripted([[f"train.log_every={k}"] for k in range(1, 40)])
    loop = fake_session(tmp_path / "g", prop, gpu_hours=2.0 / 3600, max_experiments=None)
    loop.backend._slots = [Slot(0, (0,)), Slot(1, (1,))]  # the fake ignores CUDA_VISIBLE_DEVICES
    loop.run()
    from golflab.engine.store import Store

    store = Store(tmp_path / "g" / "auto.sqlite", write=False)
    assert loop.stop_reason.startswith("--gpu-hours budget reached")
    assert store.gpu_seconds() >= 2.0
    assert store.run_count() < 2 * 39  # stopped long before the proposals ran out
    assert not store.inflight()  # runs in flight finished and were stored
    rows = store.db.execute("SELECT status, gpus FROM runs").fetchall()
    assert all(s == "ok" and g == 1 for s, g in rows)


def _decisions(db: Path) -> list[tuple]:
    with sqlite3.connect(str(db)) as con:
        recs = [json.loads(r[0]) for r in con.execute("SELECT record FROM decisions ORDER BY idx")]
    return [(r["idx"], tuple(r["overrides"]), r["status"], r["note"]) for r in recs]


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(str(db)) as con:
            return int(con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_kill_9_and_resume_repeats_no_finished_run_and_replays_the_same_search(tmp_path):
    space = tmp_path / "s.toml"
    space.write_text('[[param]]\nkey = "model.mlp"\nchoices = ["relu2", "swiglu", "gelu", "silu"]\n'
                     '[[param]]\nkey = "train.log_every"\nlow = 1\nhigh = 50\nint = true\n')
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "FAKE_SLEEP": "0.2"}
    driver = [sys.executable, str(ROOT / "tests" / "auto_fake_driver.py")]
    ref = subprocess.run([*driver, str(tmp_path / "ref"), str(space), "2", "6"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-2000:]
    out, log = tmp_path / "killed", tmp_path / "fake.log"
    env["FAKE_LOG"] = str(log)
    proc = subprocess.Popen([*driver, str(out), str(space), "2", "6"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _stored(out / "auto.sqlite") < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the search and its training children
    proc.wait()
    with sqlite3.connect(str(out / "auto.sqlite")) as con:
        stored = {"/".join(Path(d).parts[-2:]) for (d,) in con.execute("SELECT run_dir FROM runs")}
    assert len(stored) >= 5
    done = subprocess.run([*driver, str(out), str(space), "2", "6"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    starts: dict[str, int] = {}
    for line in log.read_text().splitlines():
        run = "/".join(Path(line.split(" ", 1)[1]).parts[-2:])
        starts[run] = starts.get(run, 0) + 1
    assert all(starts[r] == 1 for r in stored), "a stored run was trained again"
    assert _stored(out / "auto.sqlite") == len(starts)  # every started run is stored: none lost
    assert _decisions(out / "auto.sqlite") == _decisions(tmp_path / "ref" / "auto.sqlite")


def test_a_screening_win_not_replicated_on_fresh_seeds_is_discarded(tmp_path, monkeypatch):
    fake_env(monkeypatch, FAKE_FRESH_EFFECTS=json.dumps({"swiglu": 0.0}))  # the gain is not real
    ds = fake_session(tmp_path / "c", Scripted([["model.mlp=swiglu"]])).run()
    o = ds[1].outcome
    assert ds[1].status == "discard" and o.note.startswith("screening win not replicated on fresh seeds")
    assert o.rep_verdict != "win" and o.rep_level == 0.05 / 12 and min(o.rep_values) >= 100_000
    ds = fake_session(tmp_path / "n", Scripted([["model.mlp=swiglu"]]), replicate=False).run()
    assert ds[1].status == "keep" and ds[1].outcome.rep_verdict == ""


def _plan(tmp_path: Path, edit=None) -> PlanProposer:
    text = (ROOT / "plans" / "mlp-activations.toml").read_text()
    p = tmp_path / "plan.toml"
    p.write_text(edit(text) if edit else text)
    return PlanProposer(p, data=tmp_path)


def test_plan_mode_honours_run_if_and_promote(tmp_path, monkeypatch):
    prop = _plan(tmp_path)  # swiglu wins (default fake effects): gelu and silu only run if it loses
    ds = fake_session(tmp_path / "w", prop, base_overrides=list(prop.plan.baseline)).run()
    assert [d.name for d in ds] == ["baseline", "swiglu", "gelu", "silu"] and ds[1].status == "keep"
    assert [d.status for d in ds[2:]] == ["skipped", "skipped"] and "swiglu was win" in ds[2].note

    fake_env(monkeypatch, FAKE_EFFECTS=json.dumps({"swiglu": 0.03, "gelu": -0.02, "silu": 0.0}))
    prop = _plan(tmp_path, lambda t: t.replace('run_if = "loses:swiglu"\noverrides = ["model.mlp=gelu"]',
                                               'run_if = "loses:swiglu"\npromote = false\n'
                                               'overrides = ["model.mlp=gelu"]'))
    ds = fake_session(tmp_path / "l", prop, base_overrides=list(prop.plan.baseline)).run()
    by = {d.name: d for d in ds}
    assert by["swiglu"].verdict == "loss" and set(by) == {"baseline", "swiglu", "gelu", "silu"}
    assert by["gelu"].verdict == "win" and by["gelu"].status == "discard" and "promote = false" in by["gelu"].note
    assert by["silu"].base_idx == 0 and by["silu"].ref == "baseline"  # gelu's win did not become the baseline


def test_ctrl_c_lets_the_runs_in_flight_finish_and_loses_nothing(tmp_path):
    space = tmp_path / "s.toml"
    space.write_text('[[param]]\nkey = "train.log_every"\nlow = 1\nhigh = 500\nint = true\n')
    out, log = tmp_path / "i", tmp_path / "fake.log"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "FAKE_SLEEP": "0.5", "FAKE_LOG": str(log)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "auto_fake_driver.py"), str(out), str(space), "2",
                             "50"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while _stored(out / "auto.sqlite") < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "stopped: interrupted" in text, text[-2000:]
    started = len(log.read_text().splitlines())
    assert _stored(out / "auto.sqlite") == started < 100  # what was in flight finished and was stored
    with sqlite3.connect(str(out / "auto.sqlite")) as con:
        assert con.execute("SELECT COUNT(*) FROM inflight").fetchone()[0] == 0
