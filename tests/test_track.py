"""`golflab train --track wandb|mlflow|trackio`, offline: each tracker receives the config, the metrics
and the result (W&B offline mode, an MLflow file store, trackio's local SQLite). A tracker whose package
is missing is one line naming the extra to install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from golflab.track import SafeTracker, metric_values, result_values

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def train_tracked(data: Path, out: Path, track: str, env: dict, *extra: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "golflab", "train", "-p", "tiny", "--data", str(data), "--budget", "4steps",
            "--out", str(out), "--set", "eval.stride=0", "--set", "artifact.enabled=false", "--set",
            "train.log_every=1", "--track", track, *extra]
    return subprocess.run(args, capture_output=True, text=True, env={**ENV, **env}, timeout=600)


def test_wandb_offline_run_holds_config_metrics_and_result(tiny_dataset, tmp_path):
    pytest.importorskip("wandb")
    res = train_tracked(tiny_dataset, tmp_path / "run", "wandb",
                        {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"})
    assert res.returncode == 0, res.stderr[-3000:]
    [blob] = list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    data = blob.read_bytes()  # protobuf records: keys and JSON values appear as plain bytes
    for key in (b"train/loss", b"train/lr_scale", b"val/val_bpb", b"num_layers", b"val_bpb", b'"ok"'):
        assert key in data, key
    assert data.count(b"train/loss") >= 4


def test_mlflow_file_store_run_holds_config_metrics_and_result(tiny_dataset, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    uri = (tmp_path / "mlruns").as_uri()
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_ALLOW_FILE_STORE": "true"}
    res = train_tracked(tiny_dataset, tmp_path / "run", "mlflow", env, "--track-project", "golf-test")
    assert res.returncode == 0, res.stderr[-3000:]
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("golf-test").experiment_id])
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert run.info.status == "FINISHED" and run.info.run_name == "run" and run.data.tags["status"] == "ok"
    assert run.data.params["model.num_layers"] == "2" and run.data.params["budget.steps"] == "4"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1, 2, 3, 4]
    assert run.data.metrics["val_bpb"] == pytest.approx(result["val_bpb"])


def test_trackio_local_run_holds_config_metrics_and_result(tiny_dataset, tmp_path):
    pytest.importorskip("trackio")
    res = train_tracked(tiny_dataset, tmp_path / "run", "trackio", {"TRACKIO_DIR": str(tmp_path / "trackio")})
    assert res.returncode == 0, res.stderr[-3000:]
    code = ("import json, trackio; S = trackio.SQLiteStorage; "
            "print(json.dumps([S.get_logs('golflab', 'run'), S.get_run_config('golflab', 'run')]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**ENV, "TRACKIO_DIR": str(tmp_path / "trackio")}).stdout
    logs, config = json.loads(out.strip().splitlines()[-1])
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert [r["step"] for r in logs if "train/loss" in r] == [1, 2, 3, 4]
    assert config["model.num_layers"] == 2
    assert [r["result/val_bpb"] for r in logs if "result/val_bpb" in r] == [pytest.approx(result["val_bpb"])]


def test_a_missing_tracker_package_is_one_line_naming_the_extra(tiny_dataset, tmp_path):
    code = ("import sys; sys.modules['wandb'] = None; sys.argv[0] = 'golflab'; "
            "from golflab.cli import main; main()")
    args = ["train", "-p", "tiny", "--data", str(tiny_dataset), "--budget", "2steps", "--out", str(tmp_path / "r"),
            "--track", "wandb"]
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=ENV, timeout=600)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip() == "error: --track wandb needs the wandb package: pip install 'golflab[wandb]'"
    res = subprocess.run([sys.executable, "-m", "golflab", *args[:-1], "tensorboard"], capture_output=True,
                         text=True, env=ENV, timeout=600)
    assert res.returncode == 2 and "use one of wandb, mlflow, trackio" in res.stderr


def test_records_map_to_tracker_values_and_a_failing_tracker_only_warns(capsys):
    assert metric_values({"kind": "val", "step": 7, "val_bpb": 1.5, "final": True}) == (7, {"val/val_bpb": 1.5})
    assert result_values({"val_bpb": 1.2, "status": "ok", "fits": True, "artifact": {"bytes_total": 9}}) == \
        {"val_bpb": 1.2, "artifact.bytes_total": 9.0}

    class Broken:
        def metric(self, rec):
            raise RuntimeError("network down")

    t = SafeTracker(Broken(), "wandb")
    t.metric({"kind": "train", "step": 1})
    t.metric({"kind": "train", "step": 2})
    assert capsys.readouterr().err.count("network down") == 1 and t.failed
