"""End-to-end lab runs with the fake trainer (tests/lab_fake_trainer.py) in real child processes."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from golflab.engine.backend import Executor, make_slots
from golflab.engine.local import LocalBackend
from golflab.engine.store import Store
from golflab.errors import ConfigError, GolflabError
from golflab.lab.plan import load_plan
from golflab.lab.runner import default_store_path, lab_dir_of, lab_session
from golflab.lab.summary import ArmSummary, summarize

ROOT = Path(__file__).resolve().parents[1]
FAKE = [sys.executable, str(ROOT / "tests" / "lab_fake_trainer.py")]
CLI = [sys.executable, "-m", "golflab", "lab"]


def copy_plan(tmp_path: Path, name: str = "mlp-activations.toml", edit=None) -> Path:
    text = (ROOT / "plans" / name).read_text()
    if edit:
        text = edit(text)
    p = tmp_path / name
    p.write_text(text)
    return p


def run_lab(plan_path: Path, env: dict | None = None, parallel: int = 2, timeout_s: float | None = None) -> Store:
    plan = load_plan(plan_path)
    path = default_store_path(plan)
    backend = LocalBackend(make_slots(None, parallel=parallel), lab_dir_of(path),
                           Executor(launcher=FAKE, extra_env=env or {}), timeout_s)
    lab_session(plan, backend, path, poll_s=0.05).run()
    return Store(path, write=False)


def cli_env(**extra: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def arms_of(plan_path: Path, store: Store) -> dict[str, ArmSummary]:
    return {a.name: a for a in summarize(load_plan(plan_path), store)}


def decisions(store: Store) -> dict[str, dict]:
    return {d["name"]: d for d in store.decisions()}


def test_mlp_plan_end_to_end_with_a_crash_and_report(tmp_path):
    plan = copy_plan(tmp_path)
    store = run_lab(plan, {"FAKE_CRASH": "gelu/seed1338"}, parallel=2)
    arms = arms_of(plan, store)
    d = decisions(store)
    # swiglu wins on paired seeds and is promoted; gelu and silu run only if it loses: skipped
    assert d["swiglu"]["verdict"] == "win" and d["swiglu"]["status"] == "keep" and d["swiglu"]["test"] == "paired t"
    assert d["gelu"]["status"] == "skipped" and "run_if loses:swiglu" in d["gelu"]["note"]
    assert arms["gelu"].runs == [] and arms["silu"].state == "skipped"
    base = arms["baseline"].runs
    assert all(r.ok for r in base) and base[0].values["device"] == "cpu" and store.metrics(base[0].key, base[0].seed, "val")
    assert (Path(base[0].run_dir) / "stdout.log").exists() and "/runs/" in base[0].run_dir
    store.close()

    out = tmp_path / "report"
    res = subprocess.run([*CLI, "report", str(plan), "--out", str(out)], env=cli_env(), capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    md = (out / "report.md").read_text()
    for text in ("Runs", "val_bpb μ", "val_bpb σ", "val_bpb +/-", "bound", "val_bpb = [", "(n = ",
                 "win (promoted)", "skipped", "Noise floor", "seeds per arm", "metric_by_arm.png"):
        assert text in md, text
    assert (out / "metric_by_arm.png").stat().st_size > 5000 and (out / "val_bpb_vs_time.png").exists()
    res = subprocess.run([*CLI, "status", str(plan)], env=cli_env(), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "swiglu" in res.stdout and "win" in res.stdout


def test_loses_runs_the_conditional_arms_against_the_plain_baseline(tmp_path):
    plan = copy_plan(tmp_path, edit=lambda t: t.replace("seeds = { min = 2, max = 6 }", "seeds = { min = 3, max = 3 }"))
    effects = json.dumps({"swiglu": 0.03, "gelu": -0.02, "silu": 0.0})
    store = run_lab(plan, {"FAKE_EFFECTS": effects})
    d = decisions(store)
    assert d["swiglu"]["verdict"] == "loss" and d["swiglu"]["status"] != "keep"
    assert d["gelu"]["verdict"] == "win" and d["gelu"]["ref"] == "baseline"
    assert d["silu"]["verdict"] in ("inconclusive", "loss")
    arms = arms_of(plan, store)
    assert {r.seed for r in arms["gelu"].runs} == {1337, 1338, 1339} and len(arms["baseline"].runs) == 3


def test_promotion_builds_later_arms_on_the_winner(tmp_path):
    def edit(t: str) -> str:
        return t.replace('run_if = "loses:swiglu"\n', "", 1)  # gelu now runs after swiglu wins

    plan = copy_plan(tmp_path, edit=edit)
    store = run_lab(plan)
    gelu = arms_of(plan, store)["gelu"]
    assert gelu.ref == "swiglu" and decisions(store)["gelu"]["ref"] == "swiglu"
    cfg = (Path(gelu.runs[0].run_dir) / "config.toml").read_text()
    assert 'mlp = "gelu"' in cfg and "mlp_mult = 2.6667" in cfg  # inherited from the promoted arm
    assert decisions(store)["silu"]["status"] == "skipped"


def test_confirm_on_test(tmp_path):
    plan = copy_plan(tmp_path, edit=lambda t: t.replace("confirm_on_test = false", "confirm_on_test = true"))
    store = run_lab(plan)
    d = decisions(store)["swiglu"]
    assert d["verdict"] == "win" and d["status"] == "keep" and d["test_verdict"] == "win"
    assert all(r.values.get("test_val_bpb") is not None for r in store.runs() if r.ok)  # eval.also_splits
    store.close()
    # a val win that does not hold on the test split is not promoted
    (tmp_path / "b").mkdir()
    plan2 = copy_plan(tmp_path / "b", edit=lambda t: t.replace("confirm_on_test = false", "confirm_on_test = true"))
    store = run_lab(plan2, {"FAKE_TEST_EFFECTS": json.dumps({"swiglu": 0.0})})
    d = decisions(store)
    assert d["swiglu"]["verdict"] == "inconclusive" and d["swiglu"]["status"] != "keep"
    assert "not confirmed" in d["swiglu"]["note"]
    assert d["gelu"]["status"] == "skipped"  # not a loss either


def test_timeout_marks_only_that_run(tmp_path):
    plan = copy_plan(tmp_path, edit=lambda t: t.replace("seeds = { min = 2, max = 6 }", "seeds = { min = 2, max = 2 }"))
    store = run_lab(plan, {"FAKE_HANG": "swiglu/seed1337"}, timeout_s=1.0)
    runs = {r.seed: r for r in arms_of(plan, store)["swiglu"].runs}
    assert runs[1337].status == "timeout" and "timed out" in runs[1337].error
    assert runs[1338].ok and all(r.ok for r in arms_of(plan, store)["baseline"].runs)
    d = decisions(store)["swiglu"]
    assert d["verdict"] == "failed" and "seed 1337: timeout" in d["note"]


def test_store_refuses_a_changed_plan(tmp_path):
    plan = copy_plan(tmp_path)
    backend = LocalBackend(make_slots(None), tmp_path / "x")
    lab_session(load_plan(plan), backend).store.close()
    plan.write_text(plan.read_text().replace("max = 6", "max = 5"))
    with pytest.raises(GolflabError, match="different version of plan"):
        lab_session(load_plan(plan), backend)


def _wait_for(pred, timeout: float = 30.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def _count(db: Path, table: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _lab_cmd(plan: Path, parallel: int = 2) -> list[str]:
    return [*CLI, "run", str(plan), "--gpus", "cpu", "--parallel", str(parallel), "--quiet", "--launcher", " ".join(FAKE)]


def _starts(log: Path) -> list[str]:
    return [line.split(" ", 1)[1] for line in log.read_text().splitlines() if line.startswith("train ")]


def test_kill_9_and_resume_adopts_the_orphans_and_trains_nothing_twice(tmp_path):
    plan = copy_plan(tmp_path)
    db = tmp_path / "mlp-activations.lab.sqlite"
    log = tmp_path / "invocations.log"
    proc = subprocess.Popen(_lab_cmd(plan), env=cli_env(FAKE_SLEEP="0.6", FAKE_LOG=str(log)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # two runs stored, and a child training (its start is logged) that is not stored yet
    _wait_for(lambda: _count(db, "runs") >= 2 and log.exists() and len(_starts(log)) > _count(db, "runs"))
    proc.send_signal(signal.SIGKILL)  # its children live on, in their own sessions
    proc.wait()
    before = {(r.key, r.seed): r for r in Store(db, write=False).runs()}
    res = subprocess.run(_lab_cmd(plan), env=cli_env(FAKE_SLEEP="0.1", FAKE_LOG=str(log)), capture_output=True,
                         text=True, timeout=90)
    assert res.returncode == 0, res.stderr
    store = Store(db, write=False)
    after = {(r.key, r.seed): r for r in store.runs()}
    for k, r in before.items():  # finished runs are kept as they were, never redone
        assert (after[k].status, after[k].finished_at, after[k].values) == (r.status, r.finished_at, r.values)
    starts = _starts(log)
    assert len(starts) == len(set(starts)) == len(after)  # every run trained exactly once
    assert any(r.adopted for r in after.values())  # the orphans were waited for and adopted
    assert decisions(store)["swiglu"]["verdict"] == "win"


def test_a_second_lab_on_the_same_store_exits_at_once(tmp_path):
    plan = copy_plan(tmp_path)
    first = subprocess.Popen(_lab_cmd(plan), env=cli_env(FAKE_SLEEP="3"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _count(tmp_path / "mlp-activations.lab.sqlite", "inflight") >= 1)
        t0 = time.time()
        res = subprocess.run(_lab_cmd(plan), env=cli_env(), capture_output=True, text=True, timeout=30)
        assert time.time() - t0 < 5 and res.returncode == 2
        assert f"in use by pid {first.pid} on host" in res.stderr
        res = subprocess.run([*CLI, "status", str(plan)], env=cli_env(), capture_output=True, text=True, timeout=30)
        assert res.returncode == 0 and "baseline" in res.stdout  # readers work while the lab runs
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)


def test_ctrl_c_drains_and_a_second_stops_the_children(tmp_path):
    plan = copy_plan(tmp_path)
    db = tmp_path / "mlp-activations.lab.sqlite"
    proc = subprocess.Popen(_lab_cmd(plan), env=cli_env(FAKE_HANG="seed"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _wait_for(lambda: _count(db, "inflight") == 2)
    with sqlite3.connect(db) as con:
        pids = [r[0] for r in con.execute("SELECT pid FROM inflight")]
    proc.send_signal(signal.SIGINT)  # the first lets the runs in flight finish (these never do)
    time.sleep(1.0)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert _count(db, "runs") == 0 and _count(db, "inflight") == 0  # nothing half-done is stored
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    shutil.rmtree(tmp_path / "mlp-activations.lab")


def test_an_arm_may_not_change_the_harness_unless_the_plan_says_so(tmp_path):
    for override, key in (("budget.steps=100", "budget.steps"), ("eval.val_tokens=1024", "eval.val_tokens")):
        plan = copy_plan(tmp_path, edit=lambda t, o=override: t.replace('"model.mlp=gelu"', f'"model.mlp=gelu", "{o}"'))
        with pytest.raises(ConfigError, match=rf"arm\.gelu\.overrides: {key}: an experiment cannot change the harness"):
            load_plan(plan)
        res = subprocess.run([*CLI, "run", str(plan), "--gpus", "cpu"], env=cli_env(), capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 2 and key in res.stderr and "Traceback" not in res.stderr
    plan = copy_plan(tmp_path, edit=lambda t: t.replace('"model.mlp=gelu"', '"model.mlp=gelu", "budget.steps=100"')
                     + '\n[harness]\nvary = ["budget.*"]\n')
    assert load_plan(plan).vary == ("budget.*",)


def test_status_without_a_lab_is_a_clear_error(tmp_path):
    plan = copy_plan(tmp_path)
    res = subprocess.run([*CLI, "status", str(plan)], env=cli_env(), capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "no lab store at" in res.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text(plan.read_text().replace('"model.mlp=gelu"', '"model.mlp=tanh"'))
    res = subprocess.run([*CLI, "run", str(bad), "--gpus", "cpu"], env=cli_env(), capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and "arm.gelu.overrides: model.mlp: 'tanh' is not allowed" in res.stderr


def test_an_arm_without_common_random_numbers_runs_on_other_seeds(tmp_path):
    def edit(t: str) -> str:
        t = t.replace("seeds = { min = 2, max = 6 }", "seeds = { min = 2, max = 2 }")
        return t + '\n[[arm]]\nname = "swiglu-unpaired"\noverrides = ["model.mlp=swiglu"]\ncrn = false\n'

    plan_path = copy_plan(tmp_path, edit=edit)
    store = run_lab(plan_path)
    arms = arms_of(plan_path, store)
    base = sorted(r.seed for r in arms["baseline"].runs)
    assert sorted(r.seed for r in arms["swiglu-unpaired"].runs) == [s + 10_000 for s in base[:2]]
    d = decisions(store)["swiglu-unpaired"]
    assert d["stats"]["n_pairs"] == 0 and d["test"] == "welch t"
    # the report's noise section sets the paired spread of swiglu beside the unpaired arm's
    from golflab.lab.plan import load_plan
    from golflab.lab.summary import needed_lines, summarize

    plan = load_plan(plan_path)
    arms = {a.name: a for a in summarize(plan, store)}
    paired, unpaired = needed_lines(plan, arms["swiglu"])[0], needed_lines(plan, arms["swiglu-unpaired"])[0]
    assert "σ of the per-seed differences" in paired and "(2 shared seeds)" in paired
    assert "no shared seeds" in unpaired and "√(σ_arm² + σ_ref²)" in unpaired


def test_curve_plot_falls_back_to_train_loss_without_val_curves(tmp_path):
    from golflab.lab.plots import curves_plot
    from golflab.lab.summary import summarize

    plan_path = copy_plan(tmp_path, edit=lambda t: t.replace("seeds = { min = 2, max = 6 }", "seeds = { min = 2, max = 2 }"))
    store = run_lab(plan_path, {"FAKE_NO_VAL_CURVE": "1"})
    plan = load_plan(plan_path)
    assert not any(store.metrics(r.key, r.seed, "val") for r in store.runs())
    out = curves_plot(plan, store, summarize(plan, store), tmp_path / "curves.png")
    assert out is not None and out.stat().st_size > 1000


def test_lab_run_into_a_file_prints_plain_progress_lines(tmp_path):
    plan = copy_plan(tmp_path, edit=lambda t: t.replace("seeds = { min = 2, max = 6 }", "seeds = { min = 2, max = 2 }"))
    res = subprocess.run([*CLI, "run", str(plan), "--gpus", "cpu", "--launcher", " ".join(FAKE)], env=cli_env(),
                         capture_output=True, text=True, timeout=120)  # stdout is a pipe, not a terminal
    assert res.returncode == 0, res.stderr
    import re

    assert re.search(r"^\d\d:\d\d:\d\d train ", res.stdout, re.M)  # one timed line per event as it happens
    assert re.search(r"^\d\d:\d\d:\d\d swiglu: keep win", res.stdout, re.M)
    assert "trained 4 run(s) this time" in res.stdout
