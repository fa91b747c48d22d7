"""A scripted stand-in for a coding agent: a real process that reads golflab's brief and edits real
files in the worktree it is started in (its cwd), the way Claude Code or aider would.

    python standin_agent.py MODE [MODE ...]

The brief's proposal number picks the mode (1 -> first MODE; past the last: "none"). If STANDIN_LOG is
set, a copy of each brief and the worktree's HEAD at start go there, so tests can see what it was given.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

TABLE = Path("src/golflab/optim/table.py")


def edit(path: Path, pattern: str, repl: str) -> None:
    text = path.read_text(encoding="utf-8")
    new, n = re.subn(pattern, repl, text, count=1, flags=re.M)
    if n != 1:
        sys.exit(f"stand-in agent: pattern {pattern!r} not found in {path}")
    path.write_text(new, encoding="utf-8")


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout.strip()


def answer(description: str, overrides: list[str] | None = None) -> None:
    lines = [f"description = {json.dumps(description)}"]
    if overrides is not None:
        lines.append("overrides = [" + ", ".join(json.dumps(o) for o in overrides) + "]")
    Path(os.environ["GOLFLAB_ANSWER"]).write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(modes: list[str]) -> None:
    brief = json.loads(Path(os.environ["GOLFLAB_BRIEF_JSON"]).read_text(encoding="utf-8"))
    n = brief["number"]
    mode = modes[n - 1] if n <= len(modes) else "none"
    if os.environ.get("STANDIN_LOG"):
        log = Path(os.environ["STANDIN_LOG"]) / brief["proposal"]
        log.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.environ["GOLFLAB_BRIEF"], log / "brief.md")
        shutil.copy(os.environ["GOLFLAB_BRIEF_JSON"], log / "brief.json")
        (log / "head").write_text(git("rev-parse", "HEAD"))
        (log / "mode").write_text(mode)
    if mode == "lr":  # the matrix (Muon) LR times 25: with a too-small configured LR, clearly better
        edit(TABLE, r"rows\.append\(ParamRow\(name, p, p\.role, g\.optimizer, g\.lr,",
             'rows.append(ParamRow(name, p, p.role, g.optimizer, g.lr * (25.0 if p.role == "matrix" else 1.0),')
        git("commit", "-q", "-am", "scale the matrix LR by 25")
    elif mode == "config-bad":  # a config diff: a much smaller matrix LR
        answer("a much smaller matrix LR", ["optim.matrix.lr=0.0001"])
    elif mode == "config-protected":  # a config diff on a harness key
        answer("sparser evaluation", ["eval.stride=32"])
    elif mode == "protected":  # edits the evaluation: must be rejected, whatever it would score
        edit(Path("src/golflab/eval/bpb.py"), r"^(def \w+\()", r"# faster bits per byte\n\1")
        git("commit", "-q", "-am", "tweak the evaluation")
    elif mode == "broken":  # imports fine, fails in training; left uncommitted for golflab to commit
        edit(TABLE, r"^(def build_table\(.*\n)", r'\1    raise RuntimeError("stand-in agent broke the optimizer table")\n')
        answer("refactor the optimizer table")
    elif mode == "sleep":
        time.sleep(60)
    elif mode != "none":
        sys.exit(f"stand-in agent: unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
