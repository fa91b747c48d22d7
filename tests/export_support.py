"""The exported stand-alone script run as a submission would be (golflab not importable), and golflab's own
run of the same config under the same thread count, for tests that compare the two."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from golflab.artifact import export
from golflab.config.schema import RunConfig


def run_exported_script(cfg: RunConfig, dataset: Path, tmp_path: Path) -> dict:
    """Render cfg's train_gpt.py, run it on one thread with golflab hidden; its result.json."""
    script = tmp_path / "train_gpt.py"
    script.write_text(export.render_script(cfg))
    env = dict(os.environ, DATA_PATH=str(dataset), RUN_DIR=str(tmp_path / "exported"), OMP_NUM_THREADS="1")
    code = "import runpy, sys; sys.modules['golflab'] = None; runpy.run_path(sys.argv[1], run_name='__main__')"
    run = subprocess.run([sys.executable, "-c", code, str(script)], env=env, capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((tmp_path / "exported" / "result.json").read_text())


def train_on_one_thread(cfg: RunConfig, out: Path) -> dict:
    """golflab's own run, on one thread as the script ran: the same reduction order in every matmul."""
    from golflab.train.loop import train
    from golflab.train.sources import sources_from_config

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(cfg, out, sources_from_config(cfg))
    finally:
        torch.set_num_threads(threads)
