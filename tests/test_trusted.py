"""golflab.trusted: the probes, the train-only view, the budget account, clean exports, the review
helpers, and the honest stand-in agent's change measured by the trusted harness: the same numbers as
the normal trainer's for the same weights, and better than the base code's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from golflab.auto import worktree as wt
from golflab.auto.review import code_changes, flags, implausible
from golflab.config import load_config
from golflab.data.dataset import Dataset
from golflab.errors import DataError, GolflabError
from golflab.train.sources import sources_from_config
from golflab.trusted.budget import BudgetError, checked_budget
from golflab.trusted.probes import LeakageError, SpotChecked, probe_model
from golflab.trusted.view import build_train_view
from tests.test_auto_agent import ID, agent, copy_checkout, git
from tests.trusted_support import propose, trusted_run

V, ROWS, SEQ = 50, 4, 16


def causal(x: torch.Tensor) -> torch.Tensor:
    """A causal stand-in model: scores at t depend on tokens 0..t of the same row only."""
    onehot = torch.nn.functional.one_hot(x, V).float()
    return onehot.cumsum(1) / torch.arange(1, x.shape[1] + 1)[None, :, None]


def val_tokens() -> torch.Tensor:
    return torch.randint(V, (2000,), generator=torch.Generator().manual_seed(1))


def probe(fn) -> dict:
    return probe_model(fn, ROWS, SEQ, V, val_tokens(), torch.Generator().manual_seed(0))


def test_probes_pass_a_causal_model_and_name_each_leak():
    assert probe(causal)["causal_val"] == 3
    with pytest.raises(LeakageError, match="sees future tokens"):
        probe(lambda x: causal(torch.roll(x, -1, dims=1)))
    with pytest.raises(LeakageError, match="untouched row"):  # the next window's first token
        probe(lambda x: causal(x) + causal(torch.roll(x, -1, dims=0)[:, :1]).expand(-1, x.shape[1], -1))
    with pytest.raises(LeakageError, match="determinism"):
        probe(lambda x: causal(x) + torch.rand(x.shape[0], x.shape[1], V))


def test_spot_checks_catch_a_model_that_behaves_only_while_probed():
    calls = [0]

    def sly(x: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return causal(torch.roll(x, -1, dims=1) if calls[0] > 14 else x)

    probe(sly)  # the 14 probe requests see a causal model
    checked = SpotChecked(sly, 5, val_tokens(), torch.Generator().manual_seed(0))
    with pytest.raises(LeakageError, match="spot check"):
        for _ in range(5):
            checked(torch.randint(V, (ROWS, SEQ)))
    honest = SpotChecked(causal, 5, val_tokens(), torch.Generator().manual_seed(0))
    x = torch.randint(V, (ROWS, SEQ))
    assert torch.equal(honest(x), causal(x)) and [honest(x) is not None for _ in range(4)] and honest.checked == 5


def test_the_train_only_view_holds_the_train_split_and_the_tokenizer_only(tiny_dataset, tmp_path):
    ds = Dataset.open(tiny_dataset)
    view = build_train_view(ds, tmp_path / "view")
    manifest = json.loads((view / "manifest.json").read_text())
    assert manifest["train_only"] and set(manifest["splits"]) == {"train"}
    assert sorted(p.name for p in view.iterdir()) == sorted(
        [ds.tokenizer_path.name, "manifest.json"] + [f"train_{i:06d}.bin" for i in range(len(ds.split_files("train")))])
    vds = Dataset.open(view)
    assert vds.split_files("val") == [] and vds.vocab_size == ds.vocab_size
    cfg = load_config(preset="tiny", overrides=[f"data.path={view}"])
    with pytest.raises(DataError, match="no val shards"):
        sources_from_config(cfg).eval_tokens("val")


def test_the_trainers_budget_account_is_checked():
    cfg = load_config(preset="tiny", budget="4steps")  # 4096 tokens a step
    ok = {"steps": 4, "tokens": 4 * 4096, "train_seconds": 1.0}
    assert checked_budget(cfg, ok, wall_s=5.0)["steps"] == 4
    for bad, why in [({"steps": 40, "tokens": 40 * 4096}, "over the budget"), ({"tokens": 4096}, "a step is"),
                     ({"train_seconds": 9.0}, "lived"), ({"steps": None}, "no valid")]:
        with pytest.raises(BudgetError, match=why):
            checked_budget(cfg, {**ok, **bad}, wall_s=5.0)
    timed = load_config(preset="tiny", budget="10s")
    with pytest.raises(BudgetError, match="over the budget of 10 s"):
        checked_budget(timed, {**ok, "train_seconds": 30.0}, wall_s=60.0)


def test_an_export_holds_the_commit_only(tmp_path):
    repo = tmp_path / "r"
    (repo / "src").mkdir(parents=True)
    for name, text in [("src/a.py", "a = 1\n"), ("src/b.py", "b = 1\n"), (".gitignore", "ignored.py\n"),
                       (".gitattributes", "src/a.py export-ignore\nsrc/b.py filter=evil\n")]:
        (repo / name).write_text(text)
    (repo / "run.sh").write_text("#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, *ID, "commit", "-q", "-m", "x")
    (repo / "src" / "a.py").write_text("a = 2\n")
    git(repo, "update-index", "--skip-worktree", "src/a.py")
    (repo / "src" / "b.py").write_text("b = 2\n")
    git(repo, "update-index", "--assume-unchanged", "src/b.py")
    git(repo, "config", "filter.evil.smudge", "echo evil")  # attributes and filters do not apply
    (repo / "ignored.py").write_text("x\n")
    (repo / "untracked.py").write_text("x\n")
    out = wt.export(repo, "HEAD", tmp_path / "export")
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [".gitattributes", ".gitignore", ".golflab-export.json", "run.sh", "src/a.py", "src/b.py"]
    assert (out / "src/a.py").read_text() == "a = 1\n" and (out / "src/b.py").read_text() == "b = 1\n"
    assert os.access(out / "run.sh", os.X_OK)
    assert json.loads((out / ".golflab-export.json").read_text())["commit"] == git(repo, "rev-parse", "HEAD")
    (repo / "link").symlink_to("/etc/passwd")
    git(repo, "add", "link")
    git(repo, *ID, "commit", "-q", "-m", "link")
    with pytest.raises(GolflabError, match="only plain files"):
        wt.export(repo, "HEAD", tmp_path / "export2")


def test_golflabs_git_calls_run_no_hook_the_agent_sets(tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q")
    hook = repo / ".git" / "hooks" / "post-commit"
    hook.write_text(f"#!/bin/sh\ntouch {tmp_path / 'ran'}\n")
    hook.chmod(0o755)
    git(repo, "config", "core.fsmonitor", f"touch {tmp_path / 'ran'}; true")
    (repo / "x.py").write_text("x = 1\n")
    assert wt.commit_all(repo, "x", dict(wt.IDENTITY)) and not (tmp_path / "ran").exists()


def test_review_helpers_write_each_diff_and_flag_implausible_results(tmp_path):
    d = [{"name": "baseline", "mean": 2.00, "values": {1: 2.00, 2: 2.01}},
         {"name": "agent001", "mean": 1.99, "values": {1: 1.99, 2: 1.995}, "code_rev": "a" * 40, "status": "discard",
          "diff": "diff --git a/src/x.py b/src/x.py\n--- a/src/x.py\n+++ b/src/x.py\n@@ -1 +1 @@\n-a\n+b\n"},
         {"name": "agent002", "mean": 1.20, "values": {1: 1.2, 2: 1.2}}]
    rows = code_changes(d, tmp_path)
    assert [r["name"] for r in rows] == ["agent001"] and rows[0]["diff_stat"] == "src/x.py (+1 -1)"
    assert rows[0]["diff_path"] == tmp_path / "diffs" / "agent001-aaaaaaaaaaaa.diff"
    assert rows[0]["diff_path"].read_text() == d[1]["diff"]
    assert rows[0]["data_note"] == "" and code_changes([{**d[1], "diff": d[1]["diff"] + "GIT binary patch\n"}],
                                                       tmp_path)[0]["data_note"] == "adds binary files"
    assert list(flags(d)) == ["agent002"] and "robust σ better" in flags(d)["agent002"]
    assert implausible(1.99, [2.0, 2.01, 2.0, 1.99]) == "" and "floor" in implausible(0.2, [], floor=0.5)


@pytest.mark.slow
def test_the_honest_agents_change_is_measured_like_the_normal_trainer_and_beats_the_base(tiny_dataset, tmp_path):
    repo = copy_checkout(tmp_path / "repo")
    prop = propose(repo, tmp_path, agent("lr"))
    assert not prop.rejected and "optim/table.py" in prop.diff
    base = wt.export(repo, "HEAD", tmp_path / "base")
    src = repo / "src"  # the trusted golflab: the base commit's, in a copy
    honest = trusted_run(prop.code, tiny_dataset, tmp_path / "run", src)
    assert honest["status"] == "ok" and honest["git_sha"] == prop.code_rev and honest["probes"]["spot_checks"] >= 1
    assert honest["steps"] == 4 and honest["tokens"] == 4 * 2048 and honest["wall_seconds"] > 0
    # the normal trainer, on the same config and code, trains the same weights: the same numbers
    normal = tmp_path / "normal"
    env = {**os.environ, "PYTHONPATH": str(prop.code / "src")}
    subprocess.run([sys.executable, "-m", "golflab", "train", "--config", str(tmp_path / "run" / "config.toml"),
                    "--out", str(normal)], env=env, check=True, capture_output=True, timeout=300)
    ref = json.loads((normal / "result.json").read_text())
    assert honest["val_bpb"] == pytest.approx(ref["val_bpb"], abs=1e-6)
    assert honest["val_loss"] == pytest.approx(ref["val_loss"], abs=1e-6)
    assert honest["splits"]["test"]["val_bpb"] == pytest.approx(ref["splits"]["test"]["val_bpb"], abs=1e-6)
    # and the base code on the same seed is worse: a real improvement can still win
    before = trusted_run(base, tiny_dataset, tmp_path / "base-run", src)
    assert before["status"] == "ok" and honest["val_bpb"] < before["val_bpb"] - 0.01
