"""Where the machine allows a private mount namespace (root, or unprivileged user namespaces), the
proposal's processes cannot read the original dataset by absolute path, nor write the run directory or
the trusted golflab. Skipped elsewhere: there, reading val by absolute path is not defended."""

from __future__ import annotations

import pytest

from tests.test_auto_agent import copy_checkout
from tests.trusted_support import ISOLATED, cheat, propose, trusted_run

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not ISOLATED, reason="no mount namespace on this machine")]


def test_the_val_shards_are_out_of_reach_by_absolute_path(tiny_dataset, tmp_path):
    repo = copy_checkout(tmp_path / "repo")
    prop = propose(repo, tmp_path, cheat("read-val-abs"))
    res = trusted_run(prop.code, tiny_dataset, tmp_path / "run", repo / "src")
    assert res["status"] == "failed" and "no shard files given" in res["error"]
    assert res["isolation"]["mount_namespace"] and str(tiny_dataset.resolve()) in res["isolation"]["hidden"]


def test_the_run_dir_and_the_trusted_golflab_are_read_only(tiny_dataset, tmp_path):
    repo, trusted = copy_checkout(tmp_path / "repo"), copy_checkout(tmp_path / "trusted")
    prop = propose(repo, tmp_path, cheat("patch-harness"))
    res = trusted_run(prop.code, tiny_dataset, tmp_path / "run", trusted / "src")
    assert res["status"] == "failed" and "Read-only file system" in res["error"]
    assert "patched" not in (trusted / "src/golflab/eval/bpb.py").read_text()
