"""Attacks on the harness itself: a fake result.json written into the run directory (also by a process that outlives the trainer), and the
trainer rewriting the evaluator of the golflab that measures it. The last two run without the mount
namespace (test_trusted_isolation.py has them with it), so the harness's own checks are what stops them."""

from __future__ import annotations

import json
import time

import pytest

from tests.test_auto_agent import copy_checkout
from tests.trusted_support import cheat, propose, trusted_run

pytestmark = pytest.mark.slow


def test_a_result_json_written_by_the_proposal_is_replaced_and_its_daemon_stopped(tiny_dataset, tmp_path):
    repo = copy_checkout(tmp_path / "repo")
    prop = propose(repo, tmp_path, cheat("fake-trusted-result"))
    res = trusted_run(prop.code, tiny_dataset, tmp_path / "run", repo / "src", isolation="off")
    assert res["status"] == "ok" and res["val_bpb"] > 3.0 and "measured_by" in res
    time.sleep(5)  # the daemon would have rewritten it after 4 s
    assert json.loads((tmp_path / "run" / "result.json").read_text()) == res


def test_a_trainer_that_rewrites_the_trusted_evaluator_is_rejected(tiny_dataset, tmp_path):
    repo, trusted = copy_checkout(tmp_path / "repo"), copy_checkout(tmp_path / "trusted")
    prop = propose(repo, tmp_path, cheat("patch-harness"))
    res = trusted_run(prop.code, tiny_dataset, tmp_path / "run", trusted / "src", isolation="off")
    assert "# patched by the proposal" in (trusted / "src/golflab/eval/bpb.py").read_text()  # it did
    assert res["status"] == "failed"
    assert res["rejected"].startswith("the proposal's processes changed files the harness runs: ")
    assert "src/golflab/eval/bpb.py" in res["rejected"]
