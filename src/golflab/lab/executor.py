"""Executors: the command lines of a run and an eval, their environment, and child-process handling.

The default commands are the real trainer's (`python -m golflab train ...`, torchrun for N GPUs per
run); tests and wrappers inject another launcher (`launcher=[python, fake_trainer.py]`) or subclass.
Each child runs in its own session so that the lab can stop its whole tree (torchrun workers included)
and so that a Ctrl-C in the terminal reaches only the lab, which then stops its children itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from golflab.fileio import write_atomic


@dataclass
class Slot:
    """Where one run executes: a GPU group (CUDA_VISIBLE_DEVICES) or a CPU process slot."""

    index: int
    gpus: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        return ",".join(map(str, self.gpus)) if self.gpus else f"cpu{self.index}"


def make_slots(gpus: list[int] | None, procs_per_run: int = 1, parallel: int = 1) -> list[Slot]:
    """GPU groups of `procs_per_run` GPUs (leftovers unused), or `parallel` CPU slots."""
    if gpus:
        n = max(1, procs_per_run)
        groups = [tuple(gpus[i:i + n]) for i in range(0, len(gpus) - n + 1, n)]
        return [Slot(i, g) for i, g in enumerate(groups)]
    return [Slot(i) for i in range(max(1, parallel))]


@dataclass
class Executor:
    python: str = field(default_factory=lambda: sys.executable)
    launcher: list[str] | None = None  # replaces `python -m golflab` (a wrapper or a fake trainer)
    extra_env: dict[str, str] = field(default_factory=dict)
    code_dir: Path | None = None  # run golflab from this checkout's src/ (a proposed code change)

    def golflab(self, nproc: int = 1) -> list[str]:
        if self.launcher:
            return list(self.launcher)
        if nproc > 1:
            return [self.python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
                    "-m", "golflab"]
        return [self.python, "-m", "golflab"]

    def train_cmd(self, run_dir: Path, nproc: int = 1) -> list[str]:
        return [*self.golflab(nproc), "train", "--config", str(run_dir / "config.toml"), "--out", str(run_dir)]

    def eval_cmd(self, run_dir: Path, split: str, out: Path) -> list[str]:
        return [*self.golflab(1), "eval", str(run_dir), "--split", split, "--out", str(out)]

    def env(self, slot: Slot, lab_dir: Path) -> dict[str, str]:
        env = dict(os.environ)
        if slot.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, slot.gpus))
        env["TORCHINDUCTOR_CACHE_DIR"] = str(lab_dir / ".inductor-cache")  # shared: repeated compiles are fast
        env["PYTHONUNBUFFERED"] = "1"
        if self.code_dir is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.code_dir / "src"), env.get("PYTHONPATH")]))
        env.update(self.extra_env)
        return env

    def start(self, cmd: list[str], slot: Slot, lab_dir: Path, log: Path) -> subprocess.Popen:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self.env(slot, lab_dir), start_new_session=True)


def prepare_run_dir(run_dir: Path, config_toml: str) -> None:
    """An empty run directory holding only config.toml (what a killed or earlier attempt left is removed)."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    write_atomic(run_dir / "config.toml", config_toml)


def stop_tree(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left after `grace` seconds."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def stop_orphan(pid: int | None, marker: str) -> None:
    """Stop a child left running by a killed lab: only if pid still runs a command naming `marker`."""
    if not pid:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return
    if marker not in cmdline:
        return  # the pid was reused by something else
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.02)
