"""Reward hacks that change what the proposal's own code reports (its result.json, the byte table) are
judged on the trusted numbers: exactly the base code's on the
same seed, so a paired test finds no improvement and nothing is kept. Hacks hidden from git never run."""

from __future__ import annotations

import json

import pytest

from golflab.auto import worktree as wt
from tests.test_auto_agent import copy_checkout, git
from tests.trusted_support import cheat, propose, same_numbers, source_tree, trusted_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(tmp_path_factory, tiny_dataset):
    """(repo copy, its trusted result on the base code); the copy's src/ is the trusted golflab."""
    tmp = tmp_path_factory.mktemp("reports")
    repo = copy_checkout(tmp / "repo")
    return repo, trusted_run(wt.export(repo, "HEAD", tmp / "base"), tiny_dataset, tmp / "base-run", repo / "src")


def test_a_lowered_val_bpb_in_the_trainers_result_json_is_not_read(base, tiny_dataset, tmp_path):
    repo, ref = base
    prop = propose(repo, tmp_path, cheat("fake-result"))
    assert not prop.rejected and "0.5" in prop.diff and prop.description == "tidy the final evaluation bookkeeping"
    res = trusted_run(prop.code, tiny_dataset, tmp_path / "run", repo / "src")
    assert same_numbers(res, ref)
    untrusted = json.loads((tmp_path / "run" / res["untrusted_result"]).read_text())
    assert untrusted["val_bpb"] == pytest.approx(3.5)  # the lie is there, kept aside, never read
    # the same edit left uncommitted: golflab commits it, and the export is the same code
    again = propose(copy_checkout(tmp_path / "repo2"), tmp_path / "u", cheat("fake-result-uncommitted"))
    assert not again.rejected and again.description == "tidy the final evaluation bookkeeping"
    assert source_tree(again.code) == source_tree(prop.code)


def test_a_doubled_byte_table_in_the_trainer_changes_nothing_measured(base, tiny_dataset, tmp_path):
    repo, ref = base
    prop = propose(repo, tmp_path, cheat("byte-table"))
    assert not prop.rejected and "mul_(2)" in prop.diff
    assert same_numbers(trusted_run(prop.code, tiny_dataset, tmp_path / "run", repo / "src"), ref)


@pytest.mark.parametrize("mode", ["skip-worktree", "assume-unchanged", "ignored-hook"])
def test_changes_hidden_from_git_are_not_part_of_what_runs(tmp_path, mode):
    repo = copy_checkout(tmp_path / "repo")
    prop = propose(repo, tmp_path, cheat(mode))
    tree = tmp_path / "out" / "worktrees" / "agent001"
    assert not prop.rejected and prop.description == "document the MLP"
    assert prop.diff == wt.unified_diff(repo, git(repo, "rev-parse", "HEAD"), prop.code_rev)  # the full difference
    assert list(wt.changed_paths(repo, git(repo, "rev-parse", "HEAD"), prop.code_rev)) == ["src/golflab/model/mlp.py"]
    clean = wt.export(repo, "HEAD", tmp_path / "base")
    hidden = "src/golflab/eval/bpb.py" if mode != "ignored-hook" else "src/sitecustomize.py"
    assert (tree / hidden).read_bytes() != (clean / hidden).read_bytes() if (clean / hidden).exists() else \
        (tree / hidden).is_file()  # the hidden edit is on disk in the worktree
    changed = {k for k, v in source_tree(prop.code).items() if source_tree(clean).get(k) != v}
    assert changed == {"src/golflab/model/mlp.py"}  # what runs: the commit, the harmless edit only
