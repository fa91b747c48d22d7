"""CLI: prepare text, data info, prepare fineweb errors and the demo (in a subprocess: it imports
much of the standard library)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from golflab.cli import app
from golflab.data.dataset import Dataset
from tests.test_bpb import _docs

runner = CliRunner()
SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_prepare_text_and_info(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"text": d}) + "\n" for d in _docs(120, 9)))
    out = tmp_path / "ds"
    res = runner.invoke(app, ["prepare", "text", str(corpus), "--out", str(out), "--vocab", "400",
                              "--val-frac", "0.2", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert Dataset.open(out).vocab_size == 400
    res = runner.invoke(app, ["data", "info", str(out)])
    assert res.exit_code == 0 and "train" in res.output and "hash ok" in res.output


def test_cli_error_is_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC}
    res = subprocess.run([sys.executable, "-m", "golflab", "data", "info", str(tmp_path / "nope")],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 2
    assert "does not exist" in res.stderr and "Traceback" not in res.stderr


def test_demo_builds_a_dataset(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC}
    code = ("from pathlib import Path; from golflab.data.demo_corpus import build_demo_dataset; "
            f"print(build_demo_dataset(Path({str(tmp_path / 'demo')!r}), 512))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    data = Path(res.stdout.strip())
    ds = Dataset.open(data)
    assert ds.vocab_size == 512 and ds.split_files("test")
    assert ds.manifest["splits"]["train"]["bytes"] > 1_000_000
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert Path(res.stdout.strip()) == data  # a second call reuses the dataset
