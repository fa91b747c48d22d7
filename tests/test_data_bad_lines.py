"""A JSON Lines corpus with a cut last line: refused with a message naming --skip-bad-lines, or prepared
with the flag, which reports how many lines it skipped and where (file:line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from golflab.data.sources import find_sources, iter_documents
from tests.test_bpb import _docs

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _corpus(path: Path) -> Path:
    text = "".join(json.dumps({"text": d}) + "\n" for d in _docs(120, 9))
    path.write_text(text + '{"text": "a broken line\n' + json.dumps({"text": "after it"}) + "\n" + '{"text": "cut sho')
    return path


def test_bad_lines_are_collected_with_their_positions(tmp_path):
    src = find_sources([_corpus(tmp_path / "c.jsonl")])
    bad: list[str] = []
    docs = list(iter_documents(src, bad_lines=bad))
    assert len(docs) == 121 and docs[-1] == "after it"
    assert bad == [f"{tmp_path / 'c.jsonl'}:121", f"{tmp_path / 'c.jsonl'}:123"]


def test_prepare_text_refuses_then_skips_bad_lines(tmp_path):
    corpus = _corpus(tmp_path / "c.jsonl")
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "200"}
    base = [sys.executable, "-m", "golflab", "prepare", "text", str(corpus), "--vocab", "400", "--workers", "1",
            "--val-frac", "0.2"]
    res = subprocess.run([*base, "--out", str(tmp_path / "a")], capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "line 121 is not valid JSON" in res.stderr and "--skip-bad-lines" in res.stderr
    res = subprocess.run([*base, "--out", str(tmp_path / "b"), "--skip-bad-lines"], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"skipped 2 line(s) that are not valid JSON: {corpus}:121, {corpus}:123" in res.stdout
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["skipped_lines"] == [f"{corpus}:121", f"{corpus}:123"]
    assert sum(s["documents"] for s in manifest["splits"].values()) == 121
