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

from golflab.errors import GolflabError
from golflab.lab.executor import Executor, make_slots
from golflab.lab.plan import load_plan
from golflab.lab.runner import Lab, open_store
from golflab.lab.store import Store

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


def run_lab(plan_path: Path, env: dict | None = None, parallel: int = 2, **kw) -> Store:
    lab = Lab(load_plan(plan_path), executor=Executor(launcher=FAKE, extra_env=env or {}),
              slots=make_slots(None, parallel=parallel), poll_s=0.05, **kw)
    lab.run()
    return Store(lab.store_path)


def cli_env(**extra: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def by_arm(store: Store) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in store.runs():
        out.setdefault(r.arm, []).append(r)
    return out


def test_mlp_plan_end_to_end_with_a_crash_and_report(tmp_path):
    plan = copy_plan(tmp_path)
    store = run_lab(plan, {"FAKE_CRASH": "swiglu/seed1338"})
    runs = by_arm(store)
    crashed = [r for r in runs["swiglu"] if r.seed == 1338]
    assert crashed[0].status == "crashed" and "out of memory" in crashed[0].error
    # the crash left swiglu with one value at 2 seeds: the sequential rule asked for a third seed
    assert sorted(r.seed for r in runs["swiglu"]) == [1337, 1338, 1339]
    assert sorted(r.seed for r in runs["baseline"]) == [1337, 1338, 1339]
    assert all(r.status == "ok" for r in runs["baseline"])
    d = store.decisions()
    assert d["swiglu"].verdict == "win" and d["swiglu"].promoted
    assert d["swiglu"].stats["val"]["test"] == "paired"
    assert "gelu" not in runs and "silu" not in runs  # run_if loses:swiglu -> skipped
    ok = runs["baseline"][0]
    assert ok.code_sha and ok.diff == {} and ok.device == "cpu" and store.metrics(ok.id, "val")
    assert runs["swiglu"][0].diff == {"model.mlp": "swiglu", "model.mlp_mult": 2.6667}
    assert (Path(ok.run_dir) / "stdout.log").exists() and ok.run_dir.endswith("runs/baseline/seed1337")
    store.close()

    out = tmp_path / "report"
    res = subprocess.run([*CLI, "report", str(plan), "--out", str(out)], env=cli_env(), capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    md = (out / "report.md").read_text()
    for text in ("Runs", "val_bpb μ", "val_bpb σ", "val_bpb +/-", "paired p", "val_bpb = [", "(n = 3)",
                 "win (promoted)", "crashed", "Noise floor", "seeds per arm", "metric_by_arm.png"):
        assert text in md, text
    assert (out / "metric_by_arm.png").stat().st_size > 5000 and (out / "val_bpb_vs_time.png").exists()
    res = subprocess.run([*CLI, "status", str(plan)], env=cli_env(), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "swiglu" in res.stdout and "win" in res.stdout


def test_loses_runs_the_conditional_arms_against_the_plain_baseline(tmp_path):
    plan = copy_plan(tmp_path, edit=lambda t: t.replace("seeds = { min = 2, max = 6 }", "seeds = { min = 3, max = 3 }"))
    effects = json.dumps({"swiglu": 0.03, "gelu": -0.02, "silu": 0.0})
    store = run_lab(plan, {"FAKE_EFFECTS": effects})
    d = store.decisions()
    assert d["swiglu"].verdict == "loss" and not d["swiglu"].promoted
    assert d["gelu"].verdict == "win" and d["gelu"].stats["ref"] == "baseline"
    assert d["silu"].verdict in ("inconclusive", "loss")
    runs = by_arm(store)
    assert {r.seed for r in runs["gelu"]} == {1337, 1338, 1339} and len(runs["baseline"]) == 3


def test_promotion_builds_later_arms_on_the_winner(tmp_path):
    def edit(t: str) -> str:
        return t.replace('run_if = "loses:swiglu"\n', "", 1)  # gelu now runs after swiglu wins

    store = run_lab(copy_plan(tmp_path, edit=edit))
    runs = by_arm(store)
    gelu = runs["gelu"][0]
    assert gelu.ref_arm == "swiglu" and gelu.diff["model.mlp"] == "gelu"
    assert gelu.diff["model.mlp_mult"] == 2.6667  # inherited from the promoted arm
    assert store.decisions()["gelu"].stats["ref"] == "swiglu"
    assert "silu" not in runs


def test_confirm_on_test(tmp_path):
    plan = copy_plan(tmp_path, edit=lambda t: t.replace("confirm_on_test = false", "confirm_on_test = true"))
    store = run_lab(plan)
    d = store.decisions()["swiglu"]
    assert d.verdict == "win" and d.promoted and d.stats["test"]["verdict"] == "win"
    assert not store.evals()  # every run scored the test split itself (eval.also_splits)
    assert all(r.values.get("test_val_bpb") is not None for r in store.runs() if r.status == "ok")
    store.close()
    # a trainer that leaves no test score: the confirmation queues test-split evals instead
    (tmp_path / "c").mkdir()
    plan3 = copy_plan(tmp_path / "c", edit=lambda t: t.replace("confirm_on_test = false", "confirm_on_test = true"))
    store = run_lab(plan3, {"FAKE_NO_SPLITS": "1"})
    assert store.decisions()["swiglu"].stats["test"]["verdict"] == "win"
    assert len([e for e in store.evals() if e.status == "ok"]) == 4
    store.close()
    # a val win that does not hold on the test split is not promoted
    (tmp_path / "b").mkdir()
    plan2 = copy_plan(tmp_path / "b", edit=lambda t: t.replace("confirm_on_test = false", "confirm_on_test = true"))
    store = run_lab(plan2, {"FAKE_TEST_EFFECTS": json.dumps({"swiglu": 0.0})})
    d = store.decisions()["swiglu"]
    assert d.verdict == "inconclusive" and not d.promoted and d.stats["val"]["verdict"] == "win"
    assert "not confirmed" in d.stats["note"]
    assert not [r for r in store.runs() if r.arm in ("gelu", "silu")]  # not a loss either: skipped


def test_timeout_marks_only_that_run(tmp_path):
    plan = copy_plan(tmp_path, edit=lambda t: t.replace("seeds = { min = 2, max = 6 }", "seeds = { min = 2, max = 2 }"))
    store = run_lab(plan, {"FAKE_HANG": "swiglu/seed1337"}, timeout_s=1.0)
    runs = {(r.arm, r.seed): r for r in store.runs()}
    assert runs[("swiglu", 1337)].status == "timeout" and "timed out" in runs[("swiglu", 1337)].error
    assert runs[("swiglu", 1338)].status == "ok"
    assert store.decisions()["swiglu"].verdict == "inconclusive"


def test_store_refuses_a_changed_plan(tmp_path):
    plan = copy_plan(tmp_path)
    open_store(load_plan(plan)).close()
    plan.write_text(plan.read_text().replace("max = 6", "max = 5"))
    with pytest.raises(GolflabError, match="different version of plan"):
        open_store(load_plan(plan))


def _wait_for(pred, timeout: float = 30.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def _count(db: Path, status: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM runs WHERE status = ?", (status,)).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_kill_9_and_resume(tmp_path):
    plan = copy_plan(tmp_path)
    db = tmp_path / "mlp-activations.lab.sqlite"
    log = tmp_path / "invocations.log"
    cmd = [*CLI, "run", str(plan), "--gpus", "cpu", "--parallel", "2", "--quiet", "--launcher", " ".join(FAKE)]
    proc = subprocess.Popen(cmd, env=cli_env(FAKE_SLEEP="0.5", FAKE_LOG=str(log)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait_for(lambda: _count(db, "ok") >= 2 and _count(db, "running") >= 1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = Store(db)
    before = {r.id: r for r in store.runs() if r.done}
    store.close()
    assert len(before) >= 2
    res = subprocess.run(cmd, env=cli_env(FAKE_LOG=str(log)), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    store = Store(db)
    after = {r.id: r for r in store.runs()}
    for rid, r in before.items():  # finished runs are kept as they were, never redone
        assert (after[rid].status, after[rid].finished_at, after[rid].values) == (r.status, r.finished_at, r.values)
        assert after[rid].attempts == 1
    starts = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    for r in before.values():
        assert starts.count(r.run_dir) == 1
    assert all(r.status == "ok" for r in after.values()) and len(after) == 4
    assert store.decisions()["swiglu"].verdict == "win"
    assert len(before) < len(after)  # the kill landed mid-lab; the rest ran after the resume


def test_sigint_stops_children_and_requeues(tmp_path):
    plan = copy_plan(tmp_path)
    db = tmp_path / "mlp-activations.lab.sqlite"
    cmd = [*CLI, "run", str(plan), "--gpus", "cpu", "--parallel", "2", "--quiet", "--launcher", " ".join(FAKE)]
    proc = subprocess.Popen(cmd, env=cli_env(FAKE_HANG="seed"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for(lambda: _count(db, "running") == 2)
    store = Store(db)
    pids = [r.pid for r in store.runs() if r.status == "running"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert all(r.status == "queued" for r in store.runs())
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    shutil.rmtree(tmp_path / "mlp-activations.lab")


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
    runs = by_arm(store)
    base = sorted(r.seed for r in runs["baseline"])
    assert sorted(r.seed for r in runs["swiglu-unpaired"]) == [s + 10_000 for s in base[:2]]
    d = store.decisions()["swiglu-unpaired"]
    assert d.stats["val"]["n_pairs"] == 0 and d.stats["val"]["test"] == "welch"
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
    assert not any(store.metrics(r.id, "val") for r in store.runs())
    out = curves_plot(plan, store, summarize(plan, store), tmp_path / "curves.png")
    assert out is not None and out.stat().st_size > 1000
