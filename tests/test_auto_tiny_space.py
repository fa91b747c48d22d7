"""Done-when of issue 7: `golflab auto --space spaces/tiny.toml --max-experiments 12` with the real trainer
finds a configuration better than the tiny baseline with p below alpha, replicated on fresh seeds at the
search-wide level."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import synthetic_corpus

ROOT = Path(__file__).resolve().parents[1]
# harness-only overrides that make a CPU run take seconds; the search itself is spaces/tiny.toml unchanged
FAST = ["--budget", "4steps", "--set", "eval.val_every=0", "--set", "eval.stride=0", "--set",
        "artifact.enabled=false", "--set", "train.batch_tokens=2048"]


@pytest.fixture(scope="module")
def small_eval_dataset(tmp_path_factory) -> Path:
    """Like the session's tiny dataset, with smaller val and test splits (the final evals dominate a run)."""
    from golflab.data.prepare import PrepareOptions, prepare_text

    root = tmp_path_factory.mktemp("small_eval")
    out = root / "data"
    prepare_text([synthetic_corpus(root / "corpus.jsonl")], out,
                 PrepareOptions(vocab=320, val_frac=0.05, test_frac=0.05, seed=0, workers=1))
    return out


@pytest.mark.slow
def test_tiny_space_finds_a_confirmed_significant_win(small_eval_dataset, tmp_path):
    out = tmp_path / "auto"
    cmd = [sys.executable, "-m", "golflab", "auto", "--space", str(ROOT / "spaces" / "tiny.toml"),
           "--max-experiments", "12", "--data", str(small_eval_dataset), "--preset", "tiny", *FAST,
           "--parallel", "2", "--seeds-max", "3", "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "stopped: --max-experiments reached (12)" in run.stdout
    with sqlite3.connect(str(out / "auto.sqlite")) as con:
        recs = [json.loads(r[0]) for r in con.execute("SELECT record FROM decisions ORDER BY idx")]
    assert len(recs) == 13 and recs[0]["name"] == "baseline"
    alpha = 0.05
    wins = [r for r in recs[1:] if r["status"] == "keep"]
    assert wins, "no configuration beat the tiny baseline significantly"
    for w in wins:  # each kept change: a screening win, then a win on fresh seeds at its share of alpha
        assert w["p"] < alpha and w["delta"] < 0 and w["rep_verdict"] == "win" and w["rep_p"] <= w["rep_level"]
        assert w["rep_level"] <= alpha / 12 + 1e-12 and min(int(s) for s in w["rep_values"]) >= 100_000
    assert wins[-1]["mean"] < recs[0]["mean"]
    rows = (out / "results.tsv").read_text().splitlines()
    assert len(rows) == 14 and rows[0].split("\t")[:5] == ["commit", "val_bpb", "memory_gb", "status", "description"]
    assert "| 0 | baseline |" in (out / "report.md").read_text()
    assert (out / "progress.png").stat().st_size > 1000
