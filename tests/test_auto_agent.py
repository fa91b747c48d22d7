"""The agent proposer with a scripted stand-in agent (tests/standin_agent.py): a real process editing real
files in a real git worktree of a throwaway copy of this repository. Its code change is proposed, smoke
checked, run with the worktree's code, judged and kept (the branch advances); a config diff runs on the
kept code; edits of the harness and broken code are rejected with the reason and their diffs stored."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from golflab.auto.agent import AgentProposer
from golflab.auto.search import search_session
from golflab.config import load_config
from golflab.config.loader import to_dict
from golflab.engine.backend import make_slots
from golflab.engine.local import LocalBackend
from golflab.engine.session import Settings

ROOT = Path(__file__).resolve().parents[1]
STANDIN = Path(__file__).resolve().parent / "standin_agent.py"
# fast CPU runs where the matrix LR matters a lot (0.002 is far too small at 4 steps)
FAST = ["eval.val_every=0", "eval.stride=0", "artifact.enabled=false", "train.batch_tokens=2048",
        "optim.matrix.lr=0.002"]
ID = ["-c", "user.name=test", "-c", "user.email=test@localhost"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def copy_checkout(dst: Path) -> Path:
    """A committed copy of this checkout's files in a new git repository (the real one is never touched)."""
    for name in git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard").splitlines():
        if (ROOT / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dst / name)
    git(dst, "init", "-q")
    git(dst, "add", "-A")
    git(dst, *ID, "commit", "-q", "-m", "golflab")
    return dst


@pytest.fixture
def repo(tmp_path) -> Path:
    return copy_checkout(tmp_path / "repo")


def agent(*modes: str) -> str:
    return f"{sys.executable} {STANDIN} {' '.join(modes)}"


def _results(out: Path) -> dict[str, list[dict]]:
    """result.json of every run, by the git commit of the golflab code it imported."""
    by: dict[str, list[dict]] = {}
    for p in out.glob("runs/*/seed*/result.json"):
        r = json.loads(p.read_text())
        by.setdefault(r["git_sha"], []).append(r)
    return by


def test_stand_in_agent_change_is_run_judged_kept_and_rejections_keep_their_diff(repo, tiny_dataset, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "standin"))
    start = git(repo, "rev-parse", "HEAD")
    settings = Settings(preset="tiny", data=str(tiny_dataset), budget="4steps", base_overrides=FAST,
                            seeds_min=2, seeds_max=3, max_experiments=4)
    prop = AgentProposer(agent("lr", "config-bad", "protected", "broken"), repo, "t1", timeout_s=120)
    out = tmp_path / "out"
    ds = {d.name: d for d in search_session(settings, prop, out, LocalBackend(make_slots(None), out)).run()}
    prop.cleanup(keep_base=False)

    # the code change: proposed as a commit, run with the worktree's code, a significant win, kept
    lr = ds["agent001"]
    assert lr.status == "keep" and lr.p < 0.05 and lr.delta < 0, lr
    assert lr.description == "scale the matrix LR by 25" and "25.0" in lr.diff and "optim/table.py" in lr.diff
    assert git(repo, "rev-parse", "golflab/auto/t1") == lr.code_rev
    runs = _results(out)
    assert len(runs[lr.code_rev]) >= 2  # its runs imported golflab from the proposal's commit
    assert ds["baseline"].code_rev == start and len(runs[start]) >= 2
    # agent002 was proposed ahead, while agent001 trained (from the then base); the first worktree made
    # after the keep starts from the kept commit, and its brief shows the kept experiment
    log = tmp_path / "standin"
    assert (log / "agent002" / "head").read_text() == start
    assert [h["name"] for h in json.loads((log / "agent002" / "brief.json").read_text())["history"]] == ["baseline"]
    assert (log / "agent003" / "head").read_text() == lr.code_rev
    brief = json.loads((log / "agent003" / "brief.json").read_text())
    assert brief["base_commit"] == lr.code_rev
    assert [(h["name"], h["status"]) for h in brief["history"]][:2] == [("baseline", "keep"), ("agent001", "keep")]
    assert "table.py (+1 -1)" in brief["history"][1]["diff_stat"]
    assert "agent001" in (log / "agent003" / "brief.md").read_text()
    assert "scale the matrix LR by 25" in " ".join(brief["ideas_tried"])

    # a config diff proposed ahead is re-based onto the kept change: it runs on the kept code and loses
    cfg = ds["agent002"]
    assert cfg.overrides == ["optim.matrix.lr=0.0001"] and cfg.status == "discard" and cfg.code_rev == lr.code_rev
    assert len(runs[lr.code_rev]) >= 4
    # the harness edit and the broken code are rejected with the reason; nothing of theirs ran
    prot, broken = ds["agent003"], ds["agent004"]
    assert prot.status == "rejected" and "src/golflab/eval/bpb.py" in prot.note and "protected" in prot.note
    assert broken.status == "rejected" and "smoke run failed" in broken.note
    assert "broke the optimizer table" in broken.note
    assert set(runs) == {start, lr.code_rev}
    # every diff is in the store, kept or not
    with sqlite3.connect(str(out / "auto.sqlite")) as con:
        recs = {r["name"]: r for r in (json.loads(x[0]) for x in con.execute("SELECT record FROM decisions"))}
    assert "faster bits per byte" in recs["agent003"]["diff"]
    assert "raise RuntimeError" in recs["agent004"]["diff"] and recs["agent004"]["description"] == \
        "refactor the optimizer table"
    assert recs["agent001"]["diff"] == lr.diff and recs["agent001"]["status"] == "keep"
    # worktrees are gone, the kept commit stays on the branch, the repository's own HEAD is untouched
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "rev-parse", "HEAD") == start and git(repo, "status", "--porcelain") == ""
    assert (out / "results.tsv").read_text().count("\trejected\t") == 2

    # a rerun in the same folder starts from the kept code (its runs are replayed, not trained again),
    # names its proposals after the earlier ones and shows the agent the earlier session
    again = AgentProposer(agent("none"), repo, "t1", max_empty=1)
    loop = search_session(settings, again, out, LocalBackend(make_slots(None), out))
    base, empty = loop.run()
    again.cleanup(keep_base=False)
    assert loop.counts[0] == 0 and base.code_rev == lr.code_rev
    assert base.outcome.values == {s: lr.outcome.values[s] for s in (1, 2)}
    assert empty.name == "agent005" and empty.note.startswith("no change")
    assert "Earlier sessions" in (log / "agent005" / "brief.md").read_text()


def _bound(repo: Path, tmp_path: Path, cmd: str, **kw) -> AgentProposer:
    """A proposer bound to a stand-in loop object (no training: the smoke run is off)."""
    s = Settings(preset="tiny", data=str(tmp_path), budget="4steps")
    loop = SimpleNamespace(out=tmp_path / "out", s=s, decisions=[], kept_overrides=[], base_code=None,
                           base_code_rev="", store=None)
    p = AgentProposer(cmd, repo, "unit", smoke=False, **kw)
    p.bind(loop)
    return p


BASE = to_dict(load_config(preset="tiny"))


def test_answers_that_change_nothing_protected_keys_and_timeouts_are_rejected(repo, tmp_path):
    p = _bound(repo, tmp_path, agent("config-protected", "none", "none", "none"), max_empty=2)
    assert p.loop.base_code_rev == git(repo, "rev-parse", "HEAD") and (p.loop.base_code / "src").is_dir()
    first = p.propose(BASE)
    assert first.rejected.startswith("override 'eval.stride=32' changes the protected key 'eval.stride'")
    assert first.description == "sparser evaluation" and first.code is None
    assert p.propose(BASE).rejected.startswith("no change")
    assert p.propose(BASE).rejected.startswith("no change")
    assert p.propose(BASE) is None  # two empty answers in a row: the agent has no more ideas
    p = _bound(repo, tmp_path, agent("sleep"), timeout_s=1)
    assert p.propose(BASE).rejected == "the agent command timed out after 1 s"
    p = _bound(repo, tmp_path, "echo something went wrong; exit 3")
    assert p.propose(BASE).rejected == "the agent command failed (exit 3): something went wrong"


def test_answers_the_loop_skips_as_already_tried_are_told_to_the_agent_and_end_the_search(repo, tmp_path):
    p = _bound(repo, tmp_path, agent("config-bad", "config-bad", "config-bad"), max_empty=2)
    assert p.propose(BASE).overrides == ["optim.matrix.lr=0.0001"]
    assert p.propose(BASE).overrides == ["optim.matrix.lr=0.0001"]  # the stand-in loop recorded no decision
    brief = json.loads((p.root / "agent002" / ".golflab" / "golflab_brief.json").read_text())
    assert brief["ideas_tried"] == ["agent001 [not run: repeats a config already tried]: optim.matrix.lr=0.0001"]
    assert p.propose(BASE) is None


def test_a_code_change_excludes_the_brief_and_runs_the_extra_check(repo, tmp_path):
    p = _bound(repo, tmp_path, agent("lr", "lr"), check_cmd="grep -q 'g.lr \\* (25.0' src/golflab/optim/table.py")
    prop = p.propose(BASE)
    assert not prop.rejected and prop.code is not None
    assert prop.code_rev == git(p.root / "agent001", "rev-parse", "HEAD")  # the export holds the worktree's commit
    assert json.loads((prop.code / ".golflab-export.json").read_text()) == {"commit": prop.code_rev}
    assert "diff --git a/src/golflab/optim/table.py" in prop.diff and ".golflab" not in prop.diff
    assert (p.root / "agent001" / ".golflab" / "GOLFLAB_BRIEF.md").read_text().startswith("# golflab auto: brief")
    assert not (prop.code / ".golflab").exists() and (prop.code / ".golflab-export.json").is_file()
    p.check_cmd = "echo check says no >&2; false"
    second = p.propose(BASE)
    assert second.rejected.startswith("the check 'echo check says no >&2; false' failed (exit 1): check says no")
    assert prop.code.exists()  # not judged yet: runs in flight may still import its code
    p.observe(prop, 1.0)  # judged and not kept: its worktree goes at the next clean-up
    p.cleanup()
    assert not prop.code.exists()


def test_cli_refuses_outside_git_and_with_uncommitted_source(repo, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "golflab", "auto", "--data", str(tmp_path), "--agent-cmd", "true"]
    outside = tmp_path / "plain"
    outside.mkdir()
    run = subprocess.run(cmd, cwd=outside, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode != 0 and "is not inside a git repository" in run.stderr
    (repo / "src" / "golflab" / "model" / "mlp.py").write_text("# edited\n", encoding="utf-8")
    run = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode != 0 and "uncommitted changes under src/ (src/golflab/model/mlp.py)" in run.stderr
