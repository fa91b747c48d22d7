"""The agent proposer: any coding-agent CLI proposes changes in a fresh git worktree.

Per proposal: a detached worktree of the branch `golflab/auto/<tag>` (the kept code so far), a brief
(goal, current best config and commit, protected keys and paths, history with verdicts and diff stats),
then the command (`shell=True`, cwd = the worktree). Its answer is a config diff (TOML at $GOLFLAB_ANSWER)
and/or a code change (commits, or edits golflab commits). golflab checks it before anything runs:
protected config keys and paths, overrides that resolve, a tiny CPU smoke run with the worktree's code,
and an optional check command. A failed check is a "rejected" decision with the reason and the diff.
What runs (the smoke run, the check, every training run) is a clean export of the proposal's commit,
not its worktree, and the checked and stored diff is the full difference between the base commit and
that commit, so what was judged can be reproduced from the diff. A kept code change advances the
branch; worktrees and exports of other proposals are removed (their diffs stay in the store).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from golflab.auto import worktree as wt
from golflab.auto.brief import build_brief, write_brief
from golflab.config.loader import read_toml
from golflab.engine.backend import stop_tree
from golflab.engine.harness import harness_reason
from golflab.engine.proposal import Proposal
from golflab.errors import ConfigError, GolflabError
from golflab.fileio import write_atomic

# Paths a code proposal may not touch: how runs are fed, measured, judged and stored (and the tests,
# plans and spaces that check them). A prefix ending in "/" covers a folder.
PROTECTED_PATHS = ("src/golflab/data/", "src/golflab/eval/", "src/golflab/lab/", "src/golflab/auto/",
                   "src/golflab/engine/", "src/golflab/stats/", "src/golflab/trusted/",
                   "src/golflab/train/sources.py", "tests/", "plans/", "spaces/", "pyproject.toml", ".ci/")
BRIEF_DIR = ".golflab"  # inside each worktree; ignores itself, so the brief and answer are never in a diff
SMOKE_STEPS = 3


def protected_path(path: str) -> bool:
    return any(path.startswith(p) if p.endswith("/") else path == p for p in PROTECTED_PATHS)


def _tail(text: str, n: int = 3) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[-400:] or "no output"


def read_answer(path: Path) -> tuple[str, list[str]]:
    """(description, overrides) from the agent's answer TOML; ("", []) when it wrote none."""
    if not path.exists():
        return "", []
    data = read_toml(path)
    unknown = set(data) - {"description", "overrides"}
    if unknown:
        raise ConfigError(f"{path.name}: unknown key(s) {sorted(unknown)}; allowed: description, overrides")
    desc, overrides = data.get("description", ""), data.get("overrides", [])
    if not isinstance(desc, str):
        raise ConfigError(f"{path.name}: `description` must be a string")
    if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
        raise ConfigError(f"{path.name}: `overrides` must be a list of 'key=value' strings")
    return " ".join(desc.split()), [o.strip() for o in overrides]


class AgentProposer:
    def __init__(self, cmd: str, repo: Path, tag: str, timeout_s: float = 600.0, check_cmd: str | None = None,
                 max_proposals: int | None = None, max_empty: int = 3, smoke: bool = True,
                 check_timeout_s: float = 900.0, log: Any = None):
        self.cmd, self.repo, self.tag = cmd, wt.repo_root(Path(repo)), tag
        self.branch = f"golflab/auto/{tag}"
        self.timeout_s, self.check_cmd, self.check_timeout_s = timeout_s, check_cmd, check_timeout_s
        self.max_proposals, self.max_empty, self.smoke = max_proposals, max_empty, smoke
        self.log = log or (lambda msg: None)
        self.loop: Any = None
        self.count = 0
        self.empty = 0  # answers in a row that changed nothing (or repeated a tried config)
        self.repeats: list[str] = []  # proposals the loop skipped as already tried (no decision recorded)
        self.last: tuple[Proposal, int] | None = None  # the last proposal, and the decision count then
        self.trees: list[Path] = []  # worktrees and exports this proposer made and has not removed
        self.exports: set[Path] = set()  # those of them that are exports
        self.undecided: set[Path] = set()  # exports of proposals not yet judged (their runs import them)
        self.earlier: list[dict[str, Any]] = []  # decisions an earlier process stored in the same --out
        self.git_env = wt.identity_env(self.repo)

    # -- hooks the loop calls ---------------------------------------------------------------------
    def bind(self, loop: Any) -> None:
        """Point the loop's base code at a checkout of the branch tip, so that the baseline runs the code
        the agent starts from; restore config changes an earlier process kept into this branch."""
        from golflab.engine.session import merge_overrides

        self.loop = loop
        self.root = Path(loop.out) / "worktrees"
        self.state_path = Path(loop.out) / "agent_state.json"
        tip = wt.ensure_branch(self.repo, self.branch)
        state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        if state.get("branch") == self.branch and state.get("kept_overrides"):
            loop.kept_overrides = merge_overrides(loop.kept_overrides, state["kept_overrides"])
        # a rerun in the same --out: the loop numbers its decisions from 0 again and overwrites stored
        # ones, so earlier sessions' decisions are archived here, and proposal names continue after them
        self.earlier = list(state.get("earlier", []))
        store = getattr(loop, "store", None)
        for rec in store.decisions() if store is not None else []:
            if rec not in self.earlier:
                self.earlier.append(rec)
        names = [re.fullmatch(r"agent(\d+)", str(r.get("name"))) for r in self.earlier]
        self.count = max((int(m.group(1)) for m in names if m), default=0)
        self._save_state()
        loop.base_code, loop.base_code_rev = self._export(self.repo, tip), tip

    def kept(self, proposal: Proposal) -> None:
        if proposal.code is not None:
            wt.set_branch(self.repo, self.branch, proposal.code_rev)
            self.log(f"{self.branch} -> {proposal.code_rev[:12]} ({proposal.description})")
        self._save_state()

    def _save_state(self) -> None:
        state = {"branch": self.branch, "kept_overrides": list(self.loop.kept_overrides), "earlier": self.earlier}
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.state_path, json.dumps(state, indent=1))

    def should_prune(self, proposal: Proposal, short_value: float) -> bool:
        return False

    def observe(self, proposal: Proposal, value: float | None, pruned: bool = False) -> None:
        # judged: its worktree may go at the next cleanup (unless it became the base code)
        if proposal.code is not None:
            self.undecided.discard(Path(proposal.code).resolve())

    # -- proposing --------------------------------------------------------------------------------
    def propose(self, base: dict[str, Any]) -> Proposal | None:
        if self.loop is None:
            raise GolflabError("AgentProposer.bind(loop) must be called before propose()")
        if self.max_proposals is not None and self.count >= self.max_proposals:
            return None
        if self.last is not None:
            prev, n = self.last
            self.last = None
            if len(self.loop.decisions) == n:  # no decision recorded: the loop had judged this config and code
                self.repeats.append(f"{prev.name} [not run: repeats a config already tried]: "
                                    f"{' '.join(prev.overrides) or prev.description}")
                self.empty += 1
            else:
                self.empty = 0
        if self.empty >= self.max_empty:
            self.log(f"the agent proposed nothing {self.empty} times in a row; stopping")
            return None
        self.cleanup()
        self.count += 1
        name = f"agent{self.count:03d}"
        base_rev = wt.ensure_branch(self.repo, self.branch)
        tree = self._add_tree(name, base_rev)
        brief_dir = tree / BRIEF_DIR
        brief_dir.mkdir(exist_ok=True)
        (brief_dir / ".gitignore").write_text("*\n")
        answer = brief_dir / "answer.toml"
        md, js = brief_dir / "GOLFLAB_BRIEF.md", brief_dir / "golflab_brief.json"
        write_brief(build_brief(proposal=name, number=self.count, settings=self.loop.s, base_config=base,
                                base_commit=base_rev, branch=self.branch, worktree=tree, answer=answer,
                                decisions=list(self.loop.decisions), earlier=self.earlier, repeats=self.repeats,
                                protected_paths=PROTECTED_PATHS), md, js)
        self.log(f"{name}: running the agent in {tree}")
        env = {**os.environ, **self.git_env, "GOLFLAB_BRIEF": str(md), "GOLFLAB_BRIEF_JSON": str(js),
               "GOLFLAB_ANSWER": str(answer), "GOLFLAB_WORKTREE": str(tree)}
        reason = self._run(self.cmd, tree, env, self.timeout_s, brief_dir / "agent.log", "the agent command")
        if reason:
            return Proposal(name, [], rejected=reason)
        try:
            desc, overrides = read_answer(answer)
        except GolflabError as exc:
            return Proposal(name, [], rejected=f"bad answer: {exc}")
        wt.commit_all(tree, f"agent: {desc or 'change proposed by ' + name}", self.git_env)
        head = wt.rev(tree)
        code = head != base_rev
        if code and not wt.is_ancestor(tree, base_rev, head):
            return Proposal(name, overrides, description=desc,
                            rejected=f"the worktree's HEAD {head[:12]} does not descend from the base {base_rev[:12]}")
        if not code and not overrides:
            self.empty += 1
            return Proposal(name, [], rejected="no change (no commit, no edits, no overrides)")
        diff = wt.unified_diff(tree, base_rev, head) if code else ""
        desc = desc or "; ".join(wt.subjects(tree, base_rev, head))
        try:
            export = self._export(tree, head) if code else None
        except GolflabError as exc:
            return Proposal(name, overrides, diff=diff, description=desc, rejected=str(exc))
        prop = Proposal(name, overrides, code=export, code_rev=head if code else "", diff=diff, description=desc)
        prop.rejected = self._check(prop, base_rev, tree)
        if not prop.rejected:  # (a rejected proposal always gets a decision)
            self.last = (prop, len(self.loop.decisions))
            if prop.code is not None:
                self.undecided.add(Path(prop.code).resolve())
        return prop

    def _check(self, prop: Proposal, base_rev: str, tree: Path) -> str:
        """The reason a proposal may not run, or "" (checks run in its export; logs go to its worktree)."""
        from golflab.config import load_config
        from golflab.engine.session import merge_overrides

        for o in prop.overrides:
            key = o.split("=", 1)[0].strip()
            if harness_reason(key):
                return f"override {o!r} changes the protected key {key!r} (data, eval, budget, artifact limit, seed)"
        try:
            s = self.loop.s
            load_config(preset=s.preset, overrides=merge_overrides(self.loop.kept_overrides, prop.overrides),
                        budget=s.budget)
        except ConfigError as exc:
            return f"overrides do not resolve: {exc}"
        if prop.code is None:
            return ""
        touched = [p for p in wt.changed_paths(tree, base_rev, prop.code_rev) if protected_path(p)]
        if touched:
            return f"the change touches protected path(s) {', '.join(touched)} (the harness is off limits)"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(prop.code / "src"),
                                                                          os.environ.get("PYTHONPATH")]))}
        if self.smoke:
            with tempfile.TemporaryDirectory(prefix="golflab-smoke-") as tmp:
                reason = self._run(self.smoke_cmd(Path(tmp)), prop.code, {**env, "CUDA_VISIBLE_DEVICES": ""},
                                   self.check_timeout_s, tree / BRIEF_DIR / "smoke.log", "the smoke run")
            if reason:
                return reason
        if self.check_cmd:
            return self._run(self.check_cmd, prop.code, env, self.check_timeout_s,
                             tree / BRIEF_DIR / "check.log", f"the check {self.check_cmd!r}")
        return ""

    def smoke_cmd(self, out: Path) -> str:
        """A few CPU steps of the tiny preset with the proposal's code: does it still import and train? On the
        train-only view of the data, without evaluation, as the trusted harness trains it."""
        import shlex

        args = [sys.executable, "-m", "golflab", "train", "--preset", "tiny", "--budget", f"{SMOKE_STEPS}steps",
                "--data", str(self._train_view()), "--set", "eval.enabled=false", "--set", "artifact.enabled=false",
                "--set", "train.batch_tokens=1024", "--out", str(out / "run")]
        return shlex.join(args)

    def _train_view(self) -> Path:
        from golflab.data.dataset import Dataset
        from golflab.trusted.view import build_train_view

        view = (Path(self.loop.out) / "train-view").resolve()
        if view.exists():
            shutil.rmtree(view)  # rebuilt per proposal: a proposal's smoke run may have written into it
        return build_train_view(Dataset.open(Path(self.loop.s.data).resolve()), view)

    def _run(self, cmd: str, cwd: Path, env: dict[str, str], timeout: float, log: Path, what: str) -> str:
        """Run a shell command; "" when it succeeded, else the reason (with its last lines of output)."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w", encoding="utf-8") as fh:
            proc = subprocess.Popen(cmd, shell=True, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                stop_tree(proc, grace=5.0)  # the whole process group: an agent's own children too
                return f"{what} timed out after {timeout:g} s"
        if proc.returncode != 0:
            return f"{what} failed (exit {proc.returncode}): {_tail(log.read_text(errors='replace'))}"
        return ""

    # -- worktrees --------------------------------------------------------------------------------
    def _add_tree(self, name: str, commit: str) -> Path:
        path = wt.add_worktree(self.repo, (self.root / name).resolve(), commit)
        self.trees.append(path)
        return path

    def _export(self, cwd: Path, commit: str) -> Path:
        """A clean export of `commit` under <out>/code/ (what its runs import)."""
        path = (Path(self.loop.out) / "code" / commit[:12]).resolve()
        if path not in self.trees:
            wt.export(cwd, commit, path)
            self.trees.append(path)
            self.exports.add(path)
        return path

    def cleanup(self, keep_base: bool = True) -> None:
        """Remove this proposer's worktrees except the loop's current base code (kept commits stay on the
        branch; discarded and rejected ones live on as diffs in the store)."""
        base = self.loop.base_code if self.loop is not None and keep_base else None
        for path in list(self.trees):
            if (base is not None and Path(base).resolve() == path) or (keep_base and path in self.undecided):
                continue
            if path in self.exports:
                shutil.rmtree(path, ignore_errors=True)
                self.exports.discard(path)
            else:
                wt.remove_worktree(self.repo, path)
            self.trees.remove(path)
