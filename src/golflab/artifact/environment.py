"""What a run ran on, as the reference's log records it: Python and PyTorch versions and the output of
nvidia-smi. Written next to the artifact as RUN_DIR/environment.json, so that `golflab export` can
write the reference's log header from the run's own files. Portable core (stdlib and torch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

ENVIRONMENT_FILE = "environment.json"


def nvidia_smi() -> str | None:
    """nvidia-smi's table, or None where there is no NVIDIA driver."""
    try:
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def write_environment(out_dir: Path) -> None:
    env = {"python": sys.version, "pytorch": torch.__version__, "nvidia_smi": nvidia_smi()}
    (out_dir / ENVIRONMENT_FILE).write_text(json.dumps(env, indent=2) + "\n", encoding="utf-8")
