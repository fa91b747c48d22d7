"""Helpers of the trusted-measurement tests: a scripted agent's proposal (real agent process, real
worktree, clean export), and one run measured by `trusted_run_cmd` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from golflab.config import load_config
from golflab.config.loader import to_toml
from golflab.engine.backend import prepare_run_dir
from golflab.engine.outcome import ALSO_TEST
from golflab.engine.proposal import Proposal
from golflab.trusted import trusted_run_cmd
from golflab.trusted.isolation import Jail
from tests.test_auto_agent import BASE, FAST, _bound

CHEATS = Path(__file__).resolve().parent / "cheating_agents.py"
TRIAL = [*FAST, ALSO_TEST]  # fast CPU runs that also score the test split, as golflab auto's runs do


def cheat(*modes: str) -> str:
    return f"{sys.executable} {CHEATS} {' '.join(modes)}"


def propose(repo: Path, tmp: Path, cmd: str) -> Proposal:
    """The proposal of one agent answer (checked, exported; no smoke run)."""
    return _bound(repo, tmp, cmd).propose(BASE)


def run_config(data: Path, budget: str = "4steps", extra: tuple[str, ...] = ()) -> str:
    return to_toml(load_config(preset="tiny", budget=budget, overrides=[*TRIAL, f"data.path={data}", *extra]))


ISOLATED = Jail([], [], []).active  # can this machine give the proposal's processes a mount namespace?


def trusted_run(code: Path, data: Path, run_dir: Path, trusted_src: Path, isolation: str = "auto",
                **kw: Any) -> dict[str, Any]:
    """RUN_DIR/result.json after `trusted_run_cmd` ran with the golflab at `trusted_src` (no PYTHONPATH of
    the proposal), from a directory of its own; isolation "off" runs the children without a namespace."""
    prepare_run_dir(run_dir, run_config(data, **kw))
    env = {**os.environ, "PYTHONPATH": str(trusted_src), "GOLFLAB_TRUSTED_ISOLATION": isolation}
    proc = subprocess.run(trusted_run_cmd(sys.executable, run_dir, code), cwd=run_dir, env=env, capture_output=True,
                          text=True, timeout=300)
    result = json.loads((run_dir / "result.json").read_text())
    assert proc.returncode == (0 if result["status"] == "ok" else 3), proc.stdout + proc.stderr
    return result


def same_numbers(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two trusted results with the same val and test scores: a paired test between them has Δ = 0."""
    return (a["status"] == b["status"] == "ok" and a["val_bpb"] == b["val_bpb"] and a["val_loss"] == b["val_loss"]
            and a["splits"]["test"] == b["splits"]["test"])


def source_tree(code: Path) -> dict[str, bytes]:
    """The files under code/src (bytecode caches aside), by path."""
    return {str(p.relative_to(code)): p.read_bytes() for p in sorted((code / "src").rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}
