"""A committed sitecustomize.py that patches golflab's bpb at interpreter start-up works in every process
started on the proposal's code (the normal trainer reports 0.5 less) and in none of the harness's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.test_auto_agent import copy_checkout
from tests.trusted_support import cheat, propose, trusted_run

pytestmark = pytest.mark.slow


def test_a_committed_sitecustomize_patches_only_the_proposals_own_processes(tiny_dataset, tmp_path):
    repo = copy_checkout(tmp_path / "repo")
    prop = propose(repo, tmp_path, cheat("sitecustomize"))
    assert not prop.rejected and (prop.code / "src" / "sitecustomize.py").is_file()
    res = trusted_run(prop.code, tiny_dataset, tmp_path / "run", repo / "src")
    env = {**os.environ, "PYTHONPATH": str(prop.code / "src")}
    subprocess.run([sys.executable, "-m", "golflab", "train", "--config", str(tmp_path / "run" / "config.toml"),
                    "--out", str(tmp_path / "normal")], env=env, check=True, capture_output=True, timeout=300)
    normal = json.loads((tmp_path / "normal" / "result.json").read_text())
    assert res["status"] == "ok" and res["val_bpb"] == pytest.approx(normal["val_bpb"] + 0.5, abs=1e-6)
    assert res["splits"]["test"]["val_bpb"] == pytest.approx(normal["splits"]["test"]["val_bpb"] + 0.5, abs=1e-6)
