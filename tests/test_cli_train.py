"""What a user sees from `golflab train` and its neighbours, run as a user runs them (subprocesses): one
error line and exit 2 for an unusable --out, existing runs kept unless --resume or --force, Ctrl-C and
SIGTERM that checkpoint and say how to resume, tables readable at 80 columns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
FAST = ["--set", "eval.val_every=0", "--set", "eval.stride=0", "--set", "artifact.enabled=false",
        "--set", "train.log_every=1"]


def golflab(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "golflab", *args], capture_output=True, text=True,
                          env=env or ENV, timeout=600, **kw)


def train_args(data: Path, out: Path, budget: str = "3steps") -> list[str]:
    return ["train", "-p", "tiny", "--data", str(data), "--budget", budget, "--out", str(out), *FAST]


def one_error_line(res: subprocess.CompletedProcess, code: int = 2) -> str:
    assert res.returncode == code, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    return lines[0]


def test_out_that_is_a_file_or_not_writable_is_one_error_line(tiny_dataset, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "is a file, not a directory" in one_error_line(golflab(*train_args(tiny_dataset, afile)))
    assert "Not a directory" in one_error_line(golflab(*train_args(tiny_dataset, afile / "sub")))
    if os.geteuid() == 0:  # root writes through permission bits: use a file system that refuses writes
        if not Path("/sys/kernel").is_dir():
            pytest.skip("no read-only directory to try as root")
        readonly = Path("/sys/kernel")
    else:
        readonly = tmp_path / "ro"
        readonly.mkdir(mode=0o555)
    line = one_error_line(golflab(*train_args(tiny_dataset, readonly)))
    assert f"cannot write to the run directory {readonly}" in line
    line = one_error_line(golflab(*train_args(tiny_dataset, readonly / "run")))
    assert f"cannot create the run directory {readonly / 'run'}" in line


def test_other_unwritable_paths_are_one_error_line(tiny_dataset, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    run = tmp_path / "run"
    assert golflab(*train_args(tiny_dataset, run)).returncode == 0
    line = one_error_line(golflab("eval", str(run), "--out", str(afile / "eval.json")))
    assert "Not a directory" in line and str(afile / "eval.json") in line


def test_an_existing_run_is_kept_unless_resume_or_force(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text("")  # the lab prepares run dirs this way: still fresh
    first = golflab(*train_args(tiny_dataset, run))
    assert first.returncode == 0, first.stderr[-2000:]
    line = one_error_line(golflab(*train_args(tiny_dataset, run)))
    assert "already holds a run" in line and "--resume" in line and "--force" in line
    assert json.loads((run / "result.json").read_text())["status"] == "ok"  # untouched
    forced = golflab(*train_args(tiny_dataset, run, "2steps"), "--force")
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert json.loads((run / "result.json").read_text())["steps"] == 2
    assert [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()
            if '"train"' in ln] == [1, 2]  # the old run's metrics went with it
    line = one_error_line(golflab(*train_args(tiny_dataset, run), "--resume"))
    assert "no checkpoint.pt to resume from" in line
    typo = tmp_path / "typo"  # a run that failed before its first step has nothing to lose: a rerun replaces it
    assert golflab(*train_args(tmp_path / "no-such-data", typo)).returncode == 2
    assert json.loads((typo / "result.json").read_text())["status"] == "failed"
    assert golflab(*train_args(tiny_dataset, typo)).returncode == 0
    assert "contradict" in one_error_line(golflab(*train_args(tiny_dataset, run), "--resume", "--force"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_checkpoints_says_how_to_resume_and_resume_finishes(tiny_dataset, tmp_path, signum):
    run = tmp_path / "run"
    args = train_args(tiny_dataset, run, "60steps")
    proc = subprocess.Popen([sys.executable, "-m", "golflab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # wait for a few steps
        metrics = run / "metrics.jsonl"
        if metrics.exists() and metrics.read_text().count('"train"') >= 3:
            break
        time.sleep(0.2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[0].startswith("stopping after this step")  # at once: a GPU step or warm-up can take a while
    assert len(lines) == 2 and "Resume with: golflab train" in lines[1] and lines[1].endswith("--resume")
    res = json.loads((run / "result.json").read_text())
    assert res["status"] == "interrupted" and 3 <= res["steps"] < 60 and isinstance(res["train_loss"], float)
    assert signal.Signals(signum).name in res["error"] and (run / "checkpoint.pt").exists()
    resumed = golflab(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from step {res['steps']}" in resumed.stdout
    assert json.loads((run / "result.json").read_text())["steps"] == 60


def test_model_info_table_keeps_parameter_names_whole_at_80_columns():
    import torch

    from golflab.config import load_config
    from golflab.model.gpt import GPT
    from golflab.optim.table import build_table

    for preset in ("golf-swiglu576", "autoresearch"):
        res = golflab("model", "info", "-p", preset, "--table", env={**ENV, "COLUMNS": "80"})
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        assert max(len(ln) for ln in lines) <= 80 and "…" not in res.stdout
        cfg = load_config(preset=preset)
        with torch.device("meta"):
            model = GPT(cfg.model, cfg.model.vocab_size or 1024)
        shown = {ln.split()[0] for ln in lines if ln.strip()}
        for row in build_table(model, cfg.optim):
            assert row.name in shown, row.name
        assert any(ln.split()[-1] == "wd" for ln in lines if ln.strip())  # the last column is there


def test_config_diff_has_no_empty_table_headers():
    res = golflab("config", "-p", "golf-swiglu576", "--diff")
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
    for a, b in zip(lines, [*lines[1:], ""], strict=True):
        assert not (a.startswith("[") and (b.startswith("[") or not b)), f"empty table {a}"
    assert "[optim.matrix]" in res.stdout and "[optim]" not in res.stdout
    assert tomllib.loads(res.stdout)["optim"]["matrix"]["weight_decay"] == 0.02


def test_preset_descriptions_claim_only_what_the_preset_changes():
    from golflab.config.presets import PRESETS

    res = golflab("presets", env={**ENV, "COLUMNS": "200"})
    assert res.returncode == 0
    for name, (desc, diff) in PRESETS.items():
        if "sliding" in desc:
            assert "stride" in diff.get("eval", {}), name
    assert "sliding" not in res.stdout


def test_the_cpu_demo_budget_counts_steps_not_seconds():
    from golflab.cli.data_cmds import DEMO_CPU_BUDGET
    from golflab.config import load_config

    budget = load_config(preset="tiny", budget=DEMO_CPU_BUDGET).budget
    assert budget.seconds == 0 and budget.steps > 0
    assert DEMO_CPU_BUDGET in golflab("demo", "--help", env={**ENV, "COLUMNS": "200"}).stdout


def test_optuna_is_a_core_dependency():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("optuna") for d in deps)
    res = golflab("auto", "--help")
    assert res.returncode == 0 and "ModuleNotFoundError" not in res.stderr
