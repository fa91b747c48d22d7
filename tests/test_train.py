"""The training loop end to end on CPU: a short run learns, resume continues the curve, DDP keeps ranks
identical, divergence fails fast, splits stay apart, and the exported script reproduces the run."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from golflab.config import load_config, to_toml
from golflab.errors import DataError, TrainingError
from golflab.train import loop
from golflab.train.loop import train
from golflab.train.sources import sources_from_config

ROOT = Path(__file__).resolve().parents[1]


def cfg_for(data: Path, budget: str, *overrides: str):
    return load_config(preset="tiny", budget=budget, extra={"data": {"path": str(data)}},
                       overrides=["eval.val_tokens=4096", *overrides])


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_30_second_cpu_run_lowers_val_bpb(tiny_dataset, tmp_path):
    cfg = cfg_for(tiny_dataset, "30s", "eval.val_every=0")
    sources = sources_from_config(cfg)
    tokens = sources.eval_tokens("val")
    # an untrained model predicts uniformly-ish: about log2(V) bits per token
    result = train(cfg, tmp_path / "run", sources)
    assert result["status"] == "ok"
    res = json.loads((tmp_path / "run" / "result.json").read_text())
    untrained_bpb = math.log2(320) * (len(tokens) - 1) / sources.byte_table.token_bytes(tokens[1:], tokens[:-1]).sum().item()
    assert res["val_bpb"] < 0.75 * untrained_bpb
    for key in ("val_loss", "steps", "tokens", "train_seconds", "tokens_per_second", "params", "seed", "world_size",
                "device", "config_hash", "git_sha", "sliding_val_bpb", "artifact", "eval_seconds"):
        assert key in res, key
    assert 25 <= res["train_seconds"] < 40 and res["steps"] > 10
    assert res["artifact"]["fits"] and res["artifact"]["bytes_code"] > 10_000
    assert abs(res["artifact"]["val_bpb"] - res["val_bpb"]) < 0.05
    for name in ("config.toml", "metrics.jsonl", "train.log", "model.pt"):
        assert (tmp_path / "run" / name).exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_checkpoints_and_resume_continues_the_same_curve(tiny_dataset, tmp_path, monkeypatch, signum):
    cfg = cfg_for(tiny_dataset, "20steps", "train.log_every=1", "eval.val_every=0", "artifact.enabled=false",
                  "schedule.ema_decay=0.9")
    train(cfg, tmp_path / "full", sources_from_config(cfg))
    full = {m["step"]: m["loss"] for m in read_metrics(tmp_path / "full") if m["kind"] == "train"}

    original = loop.Trainer.train_step

    def signal_during_step_14(self, scale, progress=0.0):
        if self.clock.step == 13:
            os.kill(os.getpid(), signum)  # as Ctrl-C or the lab's SIGTERM would, in the middle of a step
        return original(self, scale, progress)

    monkeypatch.setattr(loop.Trainer, "train_step", signal_during_step_14)
    cut = train(cfg, tmp_path / "cut", sources_from_config(cfg))
    res = json.loads((tmp_path / "cut" / "result.json").read_text())
    assert cut["status"] == res["status"] == "interrupted" and res["steps"] == 14
    assert res["train_loss"] == pytest.approx(full[14], rel=1e-5)
    assert signal.Signals(signum).name in res["error"]
    assert (tmp_path / "cut" / "checkpoint.pt").exists() and not (tmp_path / "cut" / "model.pt").exists()
    monkeypatch.setattr(loop.Trainer, "train_step", original)
    res = train(cfg, tmp_path / "cut", sources_from_config(cfg), resume=True)
    resumed = {m["step"]: m["loss"] for m in read_metrics(tmp_path / "cut") if m["kind"] == "train"}
    assert res["status"] == "ok" and res["steps"] == 20
    for step in range(15, 21):
        assert resumed[step] == pytest.approx(full[step], rel=1e-5), step


def test_result_records_the_software_versions(tiny_dataset, tmp_path):
    cfg = cfg_for(tiny_dataset, "2steps", "eval.stride=0", "artifact.enabled=false")
    train(cfg, tmp_path / "run", sources_from_config(cfg))
    res = json.loads((tmp_path / "run" / "result.json").read_text())
    assert res["torch_version"] == torch.__version__
    assert res["cuda_version"] is None and res["cudnn_version"] is None and res["driver_version"] is None  # CPU
    assert isinstance(res["train_loss"], float)


def _torchrun(args: list[str], env: dict) -> None:
    """Two local processes; on failure, the workers' own words (not only the exit status)."""
    env = {**env, "PYTHONFAULTHANDLER": "1"}  # a worker that aborts prints every thread's Python stack
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          *args], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, (res.stdout[-3000:] + res.stderr[-3000:])


@pytest.mark.xdist_group("ddp")  # one two-process job at a time: concurrent rendezvous on one machine collide
def test_ddp_ranks_share_rank0s_clock_and_stop_together(tiny_dataset, tmp_path):
    """Rank 1's clock runs 4x fast; it must still apply rank 0's lr_scale at every step and stop with it."""
    cfg = cfg_for(tiny_dataset, "4s", "train.micro_batches=2", "eval.val_every=0", "artifact.enabled=false",
                  "eval.stride=0", "schedule.warmdown_frac=0.8")
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(to_toml(cfg))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    _torchrun([str(ROOT / "tests" / "ddp_clock_worker.py"), str(cfg_path), str(tmp_path)], env)
    r0, r1 = (json.loads((tmp_path / f"scales{r}.json").read_text()) for r in (0, 1))
    assert len(r0) > 5 and r0 == r1  # same steps, same lr_scale at each
    assert min(r0) < 0.9  # the warmdown (driven by seconds) was reached
    # a stop asked of rank 1 alone (a signal reaching one worker) stops both after the same step
    _torchrun([str(ROOT / "tests" / "ddp_clock_worker.py"), str(cfg_path), str(tmp_path), "3"], env)
    for r in (0, 1):
        assert json.loads((tmp_path / f"ended{r}.json").read_text()) == {"status": "interrupted", "steps": 3}


@pytest.mark.xdist_group("ddp")
def test_ddp_two_processes_end_with_identical_weights_matching_one_process(tiny_dataset, tmp_path):
    cfg = cfg_for(tiny_dataset, "6steps", "train.micro_batches=2", "eval.val_every=0", "artifact.enabled=false",
                  "eval.stride=0")
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(to_toml(cfg))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    worker = str(ROOT / "tests" / "ddp_worker.py")
    _torchrun([worker, str(cfg_path), str(tmp_path)], env)
    subprocess.run([sys.executable, worker, str(cfg_path), str(tmp_path)], check=True, env=env,
                   capture_output=True, timeout=600)
    r0, r1 = (torch.load(tmp_path / f"rank{r}_of2.pt") for r in (0, 1))
    single = torch.load(tmp_path / "rank0_of1.pt")
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
        assert torch.allclose(r0[k], single[k], atol=1e-4, rtol=1e-3), k


def test_divergence_fails_fast_with_a_clear_message(tiny_dataset, tmp_path):
    cfg = cfg_for(tiny_dataset, "200steps", "model.logit_softcap=0", "optim.tied_embed.lr=1e30", "optim.matrix.lr=1e30",
                  "eval.val_every=0")
    with pytest.raises(TrainingError, match="training diverged at step"):
        train(cfg, tmp_path / "run", sources_from_config(cfg))
    res = json.loads((tmp_path / "run" / "result.json").read_text())
    assert res["status"] == "failed" and "diverged" in res["error"]
    assert res.get("steps") is None


def test_cli_exit_codes(tiny_dataset, tmp_path):
    base = [sys.executable, "-m", "golflab", "train", "-p", "tiny", "--data", str(tiny_dataset), "--budget", "3steps",
            "--out", str(tmp_path / "r")]
    bad_key = subprocess.run([*base, "--set", "model.nope=1"], capture_output=True, text=True)
    assert bad_key.returncode == 2 and "unknown config key 'model.nope'" in bad_key.stderr
    missing = subprocess.run([*base[:7], str(tmp_path / "missing"), *base[8:]], capture_output=True, text=True)
    assert missing.returncode == 2 and "missing" in missing.stderr
    diverge = subprocess.run([*base, "--set", "model.logit_softcap=0", "--set", "optim.tied_embed.lr=1e30", "--set", "optim.matrix.lr=1e30"],
                             capture_output=True, text=True)
    assert diverge.returncode == 3 and "diverged" in diverge.stderr


def test_vocab_mismatch_is_a_data_error(tiny_dataset, tmp_path):
    cfg = cfg_for(tiny_dataset, "2steps", "model.vocab_size=100")
    with pytest.raises(DataError, match=r"model.vocab_size=100 is smaller than the dataset tokenizer's vocab \(320\)"):
        train(cfg, tmp_path / "run", sources_from_config(cfg))


def test_training_reads_only_train_and_eval_only_val_or_test(tiny_dataset):
    cfg = cfg_for(tiny_dataset, "2steps")
    sources = sources_from_config(cfg)
    loader = sources.train_loader(0, 1, 0)
    assert loader.files and all(f.name.startswith("train_") for f in loader.files)
    with pytest.raises(DataError, match="evaluation reads only the val or test split, not 'train'"):
        sources.eval_tokens("train")
    val, test = sources.eval_tokens("val"), sources.eval_tokens("test")
    assert val.numel() > 0 and test.numel() > 0 and not torch.equal(val[:100], test[:100])


def test_exported_script_reproduces_the_run_without_golflab(tiny_dataset, tmp_path):
    from golflab.artifact.export import render_script

    cfg = cfg_for(tiny_dataset, "8steps", "train.log_every=1", "eval.val_every=0", "eval.stride=0")
    script = tmp_path / "train_gpt.py"
    script.write_text(render_script(cfg))
    assert "import golflab" not in script.read_text() and "from golflab" not in script.read_text()
    env = dict(os.environ, DATA_PATH=str(tiny_dataset), RUN_DIR=str(tmp_path / "exported"), ITERATIONS="8",
               OMP_NUM_THREADS="1")
    code = "import runpy, sys; sys.modules['golflab'] = None; runpy.run_path(sys.argv[1], run_name='__main__')"
    subprocess.run([sys.executable, "-c", code, str(script)], check=True, env=env, capture_output=True, timeout=600,
                   cwd=tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the script ran (OMP_NUM_THREADS=1): CPU reductions split by thread count
    try:
        own = train(cfg, tmp_path / "own", sources_from_config(cfg))
    finally:
        torch.set_num_threads(threads)
    exported = json.loads((tmp_path / "exported" / "result.json").read_text())
    a = {m["step"]: m["loss"] for m in read_metrics(tmp_path / "own") if m["kind"] == "train"}
    b = {m["step"]: m["loss"] for m in read_metrics(tmp_path / "exported") if m["kind"] == "train"}
    assert a.keys() == b.keys() and 8 in a
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=1e-5)
    assert exported["val_bpb"] == pytest.approx(own["val_bpb"], rel=1e-5)
    assert exported["artifact"]["bytes_code"] == len(script.read_bytes())


def test_demo_prepares_and_trains(tmp_path):
    run = subprocess.run([sys.executable, "-m", "golflab", "demo", "--out", str(tmp_path / "demo"), "--budget",
                          "5steps"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "val_bpb" in run.stdout
    res = json.loads((tmp_path / "demo" / "run" / "result.json").read_text())
    assert res["status"] == "ok" and res["steps"] == 5 and res["val_bpb"] > 0


def test_export_parameter_golf_folder(tiny_dataset, tmp_path):
    from golflab.artifact.submission import export_parameter_golf

    runs = []
    for seed in (1, 2):
        cfg = cfg_for(tiny_dataset, "3steps", f"seed={seed}", "eval.val_every=0")
        train(cfg, tmp_path / f"s{seed}", sources_from_config(cfg))
        runs.append(tmp_path / f"s{seed}")
    out = export_parameter_golf(runs, tmp_path / "records" / "x", "me", "me-gh", "tiny test", "a blurb")
    sub = json.loads((out / "submission.json").read_text())
    assert sub["seeds"] == [1, 2] and len(sub["results"]) == 2
    assert sub["bytes_code"] == len((out / "train_gpt.py").read_bytes())
    for key in ("author", "github_id", "name", "blurb", "date", "val_loss", "val_bpb", "bytes_total"):
        assert key in sub
    assert sub["val_bpb"] == pytest.approx(sum(r["val_bpb"] for r in sub["results"]) / 2)
    assert (out / "train_seed1.log").exists() and "| seed |" in (out / "README.md").read_text()


def test_also_splits_scores_the_final_model_on_test_and_skips_a_missing_split(tiny_dataset, tmp_path):
    from dataclasses import replace

    cfg = cfg_for(tiny_dataset, "2steps", "eval.stride=0", "artifact.enabled=false", 'eval.also_splits=["test"]')
    sources = sources_from_config(cfg)
    result = train(cfg, tmp_path / "run", sources)
    test = result["splits"]["test"]
    assert math.isfinite(test["val_bpb"]) and test["val_bpb"] != result["val_bpb"]

    def no_test(split):
        if split == "test":
            raise DataError("no test shards")
        return sources.eval_tokens(split)

    result = train(cfg, tmp_path / "run2", replace(sources, eval_tokens=no_test))
    assert result["status"] == "ok" and result["splits"] == {}
