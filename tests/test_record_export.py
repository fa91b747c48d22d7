"""golf-baseline at full width for two CPU steps, exported as a parameter-golf record folder: the default
artifact fits, the folder and submission.json look like real records', `record check` reads it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from golflab.artifact.export import render_script
from golflab.artifact.submission import config_differences, export_parameter_golf, load_runs
from golflab.config import load_config, to_toml
from golflab.errors import GolflabError
from golflab.record.logs import parse_log
from tests.conftest import synthetic_corpus

REFERENCE_SCRIPT_BYTES = 47_686  # openai/parameter-golf train_gpt.py at the root (commit 4908dc46f)
# Files of a real multi-seed record: records/track_10min_16mb/2026-03-20_10L_Int5MLP_MuonWD04_SWA50/
REAL_FILES = {"README.md", "submission.json", "train_gpt.py"}  # + train_seed<N>.log per seed
# submission.json fields real records carry:
# 2026-03-17_NaiveBaseline: author, github_id, name, blurb, date, val_loss, val_bpb, bytes_total, bytes_code;
# 2026-04-18_PR1626_CaseOps_Taper: track, val_bpb_std, seeds, seed_results, compliance, hardware, pytorch_version;
# 2026-04-19_SP8192_CaseOps_GatedAttn_QuantGate_Loop45_PhasedTTT: val_loss_std.
REAL_FIELDS = {"author", "github_id", "name", "blurb", "date", "val_loss", "val_bpb", "bytes_total", "bytes_code",
               "track", "val_bpb_std", "val_loss_std", "seeds", "seed_results", "compliance", "hardware",
               "pytorch_version"}
REAL_SEED_FIELDS = {"val_bpb", "artifact_bytes"}  # seed_results entries (2026-04-16_SmearGate_..., 2026-04-18_...)
REAL_COMPLIANCE = {"train_under_600s", "eval_under_600s", "three_seeds"}  # 2026-04-18_PR1626_CaseOps_Taper
FAST = ["train.batch_tokens=1024", "train.micro_batches=1", "schedule.compile_warmup_steps=0", "eval.val_every=0",
        "eval.batch_tokens=8192",  # the eval pads every batch to its full size: keep it small on a CPU
        "eval.stride=0"]


@pytest.fixture(scope="module")
def small_val(tmp_path_factory) -> Path:
    """A corpus whose val split is a few thousand tokens, so a 17M-parameter eval is quick on CPU."""
    from golflab.data.prepare import PrepareOptions, prepare_text

    root = tmp_path_factory.mktemp("small_val")
    out = root / "data"
    prepare_text([synthetic_corpus(root / "c.jsonl", docs=300)], out,
                 PrepareOptions(vocab=320, val_frac=0.015, seed=1, workers=1))
    return out


@pytest.mark.slow
def test_full_width_golf_baseline_exports_as_a_record(small_val, tmp_path):
    from golflab.train.loop import train

    cfg = load_config(preset="golf-baseline", budget="2steps", extra={"data": {"path": str(small_val)}}, overrides=FAST)
    assert cfg.artifact == load_config(preset="golf-baseline").artifact  # the preset's default artifact
    result = train(cfg, tmp_path / "run")
    a = result["artifact"]
    assert result["params"] == 17_059_912 and a["quant"] == "int8_pg" and a["fits"]
    assert a["bytes_total"] <= 16_000_000

    out = export_parameter_golf([tmp_path / "run"], tmp_path / "rec", "me", "me-gh", "full width", "two CPU steps")
    assert {p.name for p in out.iterdir()} == REAL_FILES | {f"train_seed{cfg.seed}.log"}
    sub = json.loads((out / "submission.json").read_text())
    assert sub.keys() >= REAL_FIELDS and sub["compliance"].keys() >= REAL_COMPLIANCE
    assert sub["seed_results"][str(cfg.seed)].keys() >= REAL_SEED_FIELDS
    assert sub["track"] == "10min_16mb" and sub["hardware"] == "1xcpu" and sub["bytes_total"] <= 16_000_000
    script = (out / "train_gpt.py").read_bytes()
    assert sub["bytes_code"] == len(script) == len(render_script(cfg).encode())

    log = parse_log(out / f"train_seed{cfg.seed}.log")
    assert log.code == script.decode().rstrip("\n")  # the code snapshot heads the log, as the reference's
    assert (log.seed, log.metric) == (cfg.seed, "final_int8_zlib_roundtrip_exact")
    assert log.val_loss == pytest.approx(a["val_loss"], abs=1e-8) and log.total_bytes == sub["bytes_total"]
    readme = (out / "README.md").read_text()
    assert str(small_val) not in readme and "| seed |" in readme

    check = subprocess.run([sys.executable, "-m", "golflab", "record", "check", str(out)], capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 1  # one seed on a CPU: the seeds and hardware rules fail, the size rule passes
    rows = {line.split("│")[1].strip(): line for line in check.stdout.splitlines() if line.count("│") > 3}
    assert "FAIL" in rows["seeds"] and "FAIL" in rows["hardware"] and "pass" in rows["size"]


@pytest.mark.xfail(strict=True, reason="the specialized golf-baseline script is 49,423 bytes (tab-indented): the "
                   "trainer, eval and logs (8 KB of train.loop), golflab's artifact format and its round trip "
                   "remain (docs/artifact.md)")
def test_golf_baseline_script_is_no_bigger_than_the_reference():
    assert len(render_script(load_config(preset="golf-baseline")).encode()) <= REFERENCE_SCRIPT_BYTES


def _fake_run(d: Path, seed: int, *overrides: str) -> Path:
    cfg = load_config(preset="tiny", overrides=[f"seed={seed}", *overrides])
    d.mkdir(parents=True)
    (d / "config.toml").write_text(to_toml(cfg))
    (d / "result.json").write_text(json.dumps({"status": "ok", "seed": seed}))
    return d


def test_runs_of_different_configs_name_the_keys(tmp_path):
    a = _fake_run(tmp_path / "a", 1)
    b = _fake_run(tmp_path / "b", 2, "model.mlp=swiglu", "optim.matrix.lr=0.03")
    with pytest.raises(GolflabError, match=r"model\.mlp: 'relu2' in .*a, 'swiglu' in .*b; optim\.matrix\.lr"):
        load_runs([a, b])
    assert config_differences({a: load_config(preset="tiny")}) == []
    with pytest.raises(GolflabError, match="same seed"):
        load_runs([a, _fake_run(tmp_path / "c", 1)])
