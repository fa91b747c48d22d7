"""Git plumbing for the agent proposer: detached worktrees, a branch that carries kept code, diffs.

Every call runs `git` in a subprocess and turns a failure into a GolflabError naming the command,
so a broken repository stops `golflab auto` with one line instead of a traceback. The repository's
config is shared with the agent's worktrees, so every call turns off hooks and the fsmonitor: an agent
that sets them does not get a command run by golflab.

What a proposal runs is `export(commit)`: the commit's tree written out blob by blob, so nothing
untracked, ignored, skip-worktree or assume-unchanged, and no checkout filter or export attribute, takes
part.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from golflab.errors import GolflabError
from golflab.fileio import write_atomic
from golflab.train.runlog import EXPORT_MARK

SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")
IDENTITY = {"GIT_AUTHOR_NAME": "golflab auto", "GIT_AUTHOR_EMAIL": "golflab-auto@localhost",
            "GIT_COMMITTER_NAME": "golflab auto", "GIT_COMMITTER_EMAIL": "golflab-auto@localhost"}


def git(cwd: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(["git", *SAFE, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                              env={**os.environ, **(env or {})})
    except (OSError, subprocess.SubprocessError) as exc:
        raise GolflabError(f"git {' '.join(args)} in {cwd} failed: {exc}") from None
    if check and proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise GolflabError(f"git {' '.join(args)} in {cwd} failed: {last[0]}")
    return proc.stdout.strip()


def repo_root(path: Path) -> Path:
    """The top of the git repository holding `path`; a GolflabError outside one."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise GolflabError(f"git is needed for --agent-cmd: {exc}") from None
    if top.returncode != 0:
        raise GolflabError(f"{path.resolve()} is not inside a git repository; --agent-cmd starts the agent in a "
                           "git worktree of the golflab checkout you run it from")
    return Path(top.stdout.strip())


def dirty_tracked(repo: Path, under: str = "src/") -> list[str]:
    """Tracked files under `under` with uncommitted changes (staged or not)."""
    out = git(repo, "diff", "--name-only", "HEAD", "--", under)
    return [p for p in out.splitlines() if p]


def identity_env(repo: Path) -> dict[str, str]:
    """Author/committer variables for commits made where no git identity is configured."""
    return {} if git(repo, "config", "user.email", check=False) else dict(IDENTITY)


def rev(cwd: Path, ref: str = "HEAD") -> str:
    return git(cwd, "rev-parse", "--verify", f"{ref}^{{commit}}")


def branch_tip(repo: Path, branch: str) -> str | None:
    out = git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False)
    return out or None


def ensure_branch(repo: Path, branch: str) -> str:
    """The branch's commit, creating the branch at HEAD on first use."""
    tip = branch_tip(repo, branch)
    if tip is None:
        git(repo, "check-ref-format", "--branch", branch)
        tip = rev(repo)
        git(repo, "update-ref", f"refs/heads/{branch}", tip)
    return tip


def set_branch(repo: Path, branch: str, sha: str) -> None:
    git(repo, "update-ref", f"refs/heads/{branch}", sha)


def add_worktree(repo: Path, path: Path, commit: str) -> Path:
    """A detached worktree of `commit` at `path` (a leftover of a killed process there is replaced)."""
    if path.exists():
        remove_worktree(repo, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    git(repo, "worktree", "add", "--detach", "--force", str(path), commit)
    return path


def remove_worktree(repo: Path, path: Path) -> None:
    git(repo, "worktree", "remove", "--force", "--force", str(path), check=False)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    git(repo, "worktree", "prune", check=False)


def is_ancestor(cwd: Path, older: str, newer: str) -> bool:
    return subprocess.run(["git", *SAFE, "merge-base", "--is-ancestor", older, newer], cwd=cwd,
                          capture_output=True, timeout=60).returncode == 0


def commit_all(cwd: Path, message: str, env: dict[str, str]) -> bool:
    """Commit every change in the worktree (ignored files excepted); False when there was none."""
    if not git(cwd, "status", "--porcelain"):
        return False
    git(cwd, "add", "-A")
    git(cwd, "commit", "--quiet", "--no-verify", "-m", message, env=env)
    return True


def changed_paths(cwd: Path, base: str, head: str) -> list[str]:
    """Every path a change touches (both sides of a rename)."""
    out = git(cwd, "diff", "--name-only", "--no-renames", base, head)
    return [p for p in out.splitlines() if p]


def unified_diff(cwd: Path, base: str, head: str) -> str:
    """The full tree difference between two commits, binary files included (`git apply` reproduces it)."""
    return git(cwd, "diff", "--no-color", "--no-ext-diff", "--no-textconv", "--binary", base, head)


def export(cwd: Path, commit: str, dest: Path) -> Path:
    """The tree of `commit` written to `dest` (replaced if there), with EXPORT_MARK naming the commit.

    Blobs are read straight from the object store (`git ls-tree` + `git cat-file --batch`), so the files
    are the committed bytes; a symbolic link or a submodule (which could point outside the commit) is an
    error."""
    sha = rev(cwd, commit)
    listing = git(cwd, "ls-tree", "-r", "-z", "--full-tree", sha).split("\0")
    entries = []
    for item in filter(None, listing):
        meta, path = item.split("\t", 1)
        mode, kind, obj = meta.split()
        if kind != "blob" or mode not in ("100644", "100755"):
            raise GolflabError(f"commit {sha[:12]} holds {path} (mode {mode}): only plain files can be run")
        entries.append((path, obj, mode == "100755"))
    if dest.exists():
        shutil.rmtree(dest)
    tmp = dest.with_name(dest.name + ".part")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    proc = subprocess.run(["git", *SAFE, "cat-file", "--batch"], cwd=cwd, capture_output=True, timeout=300,
                          input="".join(f"{obj}\n" for _, obj, _ in entries).encode())
    if proc.returncode != 0:
        raise GolflabError(f"git cat-file --batch in {cwd} failed: {proc.stderr.decode(errors='replace')[-200:]}")
    data, pos = proc.stdout, 0
    for path, _obj, executable in entries:
        header_end = data.index(b"\n", pos)
        size = int(data[pos:header_end].split()[2])
        body, pos = data[header_end + 1:header_end + 1 + size], header_end + 2 + size
        target = (tmp / path).resolve()
        if tmp.resolve() not in target.parents:
            raise GolflabError(f"commit {sha[:12]} holds a path outside its tree: {path}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        if executable:
            target.chmod(0o755)
    write_atomic(tmp / EXPORT_MARK, json.dumps({"commit": sha}) + "\n")
    tmp.rename(dest)
    return dest


def subjects(cwd: Path, base: str, head: str) -> list[str]:
    out = git(cwd, "log", "--reverse", "--format=%s", f"{base}..{head}")
    return [s for s in out.splitlines() if s]
