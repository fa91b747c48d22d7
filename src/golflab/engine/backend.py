"""Run backends: where the engine's runs execute. One interface (submit, poll, cancel, slots, close), what
a run's inputs and outputs are, a run's command line and environment, and the process handling every
backend shares. The first implementation, the local machine, is engine/local.py.

A run's inputs travel in a RunSpec (config TOML, code directory, data reference with the manifest's
sha256) and its outputs come back in a RunOutcome (result.json, metrics, log tail, node, GPU, wall time),
so that a backend on other machines (Ray) needs no shared paths beyond what it ships itself.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from golflab.engine.outcome import log_tail, read_json, read_metrics
from golflab.fileio import write_atomic
from golflab.train.compiling import COMPILE_CACHE_ENV


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class DataRef:
    """The dataset a run reads: its directory and the sha256 of its manifest.json (checked where it runs)."""

    path: str
    sha256: str | None = None

    @staticmethod
    def of(path: str | Path) -> DataRef:
        manifest = Path(path) / "manifest.json"
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None
        return DataRef(str(path), digest)

    def problem(self) -> str | None:
        """Why this machine cannot run on the data (None: it can)."""
        if self.sha256 is None:
            return None
        manifest = Path(self.path) / "manifest.json"
        if not manifest.is_file():
            return f"data {self.path}: no manifest.json on {socket.gethostname()}"
        if hashlib.sha256(manifest.read_bytes()).hexdigest() != self.sha256:
            return f"data {self.path}: manifest.json on {socket.gethostname()} differs from the one the plan was started with"
        return None


@dataclass(frozen=True)
class RunSpec:
    key: str  # run identity without the seed: config hash (+ code commit)
    seed: int
    run_dir: Path
    config_toml: str
    code: Path | None = None  # a code proposal's clean export (None: the installed golflab)
    code_rev: str = ""
    data: DataRef | None = None
    label: str = ""  # for log lines

    @property
    def ident(self) -> tuple[str, int]:
        return (self.key, self.seed)


@dataclass
class RunOutcome:
    spec: RunSpec
    status: str  # ok / failed / crashed / timeout / interrupted / rejected
    result: dict[str, Any]
    metrics: list[dict[str, Any]]
    error: str | None
    node: str
    slot: str
    gpus: int
    wall_s: float
    started_at: float
    adopted: bool = False  # finished by a process an earlier engine started


OnStart = Callable[[RunSpec, "int | None", Slot], None]  # (spec, pid or None before the child exists, slot)


class Backend(Protocol):
    on_start: OnStart | None  # the engine records a run in flight before it starts

    def watch(self, spec: RunSpec, pid: int, slot_label: str | None, started_at: float | None) -> bool: ...

    def slots(self) -> int: ...

    def free(self) -> int: ...

    def submit(self, spec: RunSpec) -> None: ...

    def poll(self) -> list[RunOutcome]: ...

    def cancel(self, ident: tuple[str, int]) -> None: ...

    def running(self) -> list[RunSpec]: ...

    def close(self) -> None: ...


@dataclass
class Executor:
    """The command line and environment of one run (tests and wrappers inject another `launcher`)."""

    python: str = field(default_factory=lambda: sys.executable)
    launcher: list[str] | None = None  # replaces `python -m golflab` (a wrapper or a fake trainer)
    extra_env: dict[str, str] = field(default_factory=dict)
    # the command of a run with a code proposal's code, (python, run_dir, code, nproc) -> argv: the trusted
    # harness (golflab.trusted.trusted_run_cmd) measures it; None: train with the code on PYTHONPATH
    code_runner: Callable[[str, Path, Path, int], list[str]] | None = None

    def golflab(self, nproc: int = 1) -> list[str]:
        if self.launcher:
            return list(self.launcher)
        if nproc > 1:
            return [self.python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
                    "-m", "golflab"]
        return [self.python, "-m", "golflab"]

    def train_cmd(self, run_dir: Path, nproc: int = 1) -> list[str]:
        return [*self.golflab(nproc), "train", "--config", str(run_dir / "config.toml"), "--out", str(run_dir)]

    def run_cmd(self, run_dir: Path, nproc: int, code: Path | None, problem: str | None = None) -> list[str]:
        """A run's argv: a data problem's one-line failure, the trusted harness for a proposal's code (when a
        code_runner is set), else `golflab train` (the proposal's code then rides on PYTHONPATH, see env)."""
        if problem:
            return [self.python, "-c", f"import sys; print({problem!r}); sys.exit(2)"]
        if code is not None and self.code_runner is not None:
            return self.code_runner(self.python, run_dir, code, nproc)
        return self.train_cmd(run_dir, nproc)

    def env(self, slot: Slot, cache_dir: Path, cpu_threads: int | None = None,
            code: Path | None = None) -> dict[str, str]:
        env = dict(os.environ)
        if slot.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, slot.gpus))
        elif cpu_threads and "OMP_NUM_THREADS" not in os.environ:
            env["OMP_NUM_THREADS"] = str(cpu_threads)  # parallel CPU runs share the cores instead of fighting
        env["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir / ".inductor-cache")  # shared: repeated compiles are fast
        # portable compile artifacts, kept in the lab folder: copied with it, a fresh machine compiles warm
        env.setdefault(COMPILE_CACHE_ENV, str(cache_dir / "compile-cache"))
        env["PYTHONUNBUFFERED"] = "1"
        if code is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code / "src"), env.get("PYTHONPATH")]))
        env.update(self.extra_env)
        return env

    def start(self, cmd: list[str], env: dict[str, str], log: Path,
              preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True, preexec_fn=preexec_fn)


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


def alive(pid: int | None, marker: str) -> bool:
    """pid still runs a command with an argument naming `marker` (a run dir, or a path inside it), or works
    in it (a persistent worker's job): the process an earlier engine started for that run."""
    if not pid:
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    named = cwd == marker or any(a == marker or a.startswith(marker + "/") for a in args)
    return named and stat.rsplit(")", 1)[-1].split()[0] != "Z"


def find_pid(marker: str) -> int | None:
    """The process whose command line names `marker` (an engine killed between starting a child and
    recording its pid leaves one we only know by its run directory)."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and alive(int(proc.name), marker):
            return int(proc.name)
    return None


def stop_pid(pid: int | None, marker: str) -> None:
    """Stop the process group of an earlier engine's child (only if pid still runs that command)."""
    if not alive(pid, marker):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    for _ in range(100):
        if not alive(pid, marker):
            return
        time.sleep(0.02)


def outcome_of(spec: RunSpec, rc: int | None, timed_out: bool, timeout_s: float | None, slot: Slot,
               started_at: float, adopted: bool = False) -> RunOutcome:
    """What a finished child left in its run directory, classified."""
    result = read_json(spec.run_dir / "result.json")
    metrics = read_metrics(spec.run_dir / "metrics.jsonl")
    tail = log_tail(spec.run_dir)
    error: str | None = None
    if timed_out:
        status, error = "timeout", f"timed out after {timeout_s:.0f}s\n{tail}"
    elif result is None:
        status, error = "crashed", f"exit code {rc}, no result.json\n{tail}"
    elif result.get("rejected"):  # the trusted harness refused the model (a probe, the budget, integrity)
        status, error = "rejected", str(result["rejected"])
    elif result.get("status") == "interrupted":
        status, error = "interrupted", f"interrupted\n{tail}"
    elif result.get("status") != "ok" or (rc is not None and rc != 0):
        status, error = "failed", f"{result.get('error') or f'exit code {rc}'}\n{tail}"
    else:
        status = "ok"
    return RunOutcome(spec, status, result or {}, metrics, error.strip() if error else None, socket.gethostname(),
                      slot.label, len(slot.gpus), time.time() - started_at, started_at, adopted)
