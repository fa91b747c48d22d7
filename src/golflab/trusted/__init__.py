"""Trusted measurement of code proposals: the harness measures, the proposal only trains.

`trusted_run_cmd(...)` is the command a run backend starts, from the trusted (base) golflab and with
no PYTHONPATH of the proposal, for every run of a code proposal. It trains RUN/config.toml with the
proposal's code (a clean export of its commit) on a train-only view of the dataset, asks a separate
process running the proposal's model for scores on input windows only, checks the model for leaks
(golflab.trusted.probes), and computes val/test loss and bpb with this golflab's evaluator, byte table
and splits into RUN/result.json. See "Threat model" in docs/auto.md.
"""

from __future__ import annotations

import sys
from pathlib import Path


def trusted_run_cmd(python: str, run_dir: Path, code_dir: Path, nproc: int = 1,
                    max_wall_s: float | None = None) -> list[str]:
    """The command that trains RUN_DIR/config.toml with the proposal's code (code_dir, a clean export of its
    commit) and then measures it with THIS (trusted) golflab; it writes RUN_DIR/result.json in the format
    lab/outcome.py reads (status, val_loss, val_bpb, splits.test..., steps, tokens, train_seconds, ...).

    `-P` (Python >= 3.11) keeps the current directory off sys.path, so no file a proposal writes there is
    imported by the harness; on 3.10, start it from a directory the proposal cannot write. `max_wall_s`
    bounds the trainer's wall time also for a steps or tokens budget."""
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    cmd = [python, *safe_path, "-m", "golflab.trusted", "--run-dir", str(run_dir), "--code", str(code_dir),
           "--nproc", str(nproc)]
    return cmd + (["--max-wall", f"{max_wall_s:g}"] if max_wall_s else [])
