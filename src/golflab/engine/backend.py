"""Run backends: where the engine's runs execute. One interface (submit, poll, cancel, slots, close) and its
first implementation, the local machine: one child process per run on a slot (a GPU group, torchrun when
it has several GPUs, or a CPU slot with its share of the cores), started in its own session so that its
whole tree can be stopped and a Ctrl-C in the terminal reaches only the engine.

A run's inputs travel in a RunSpec (config TOML, code directory, data reference with the manifest's
sha256) and its outputs come back in a RunOutcome (result.json, metrics, log tail, node, GPU, wall time),
so that a backend on other machines (Ray) needs no shared paths beyond what it ships itself.
"""

from __future__ import annotations

import hashlib
import json
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

    def env(self, slot: Slot, cache_dir: Path, cpu_threads: int | None = None,
            code: Path | None = None) -> dict[str, str]:
        env = dict(os.environ)
        if slot.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, slot.gpus))
        elif cpu_threads and "OMP_NUM_THREADS" not in os.environ:
            env["OMP_NUM_THREADS"] = str(cpu_threads)  # parallel CPU runs share the cores instead of fighting
        env["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir / ".inductor-cache")  # shared: repeated compiles are fast
        env["PYTHONUNBUFFERED"] = "1"
        if code is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code / "src"), env.get("PYTHONPATH")]))
        env.update(self.extra_env)
        return env

    def start(self, cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)


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


@dataclass
class _Active:
    spec: RunSpec
    slot: Slot
    started: float
    proc: subprocess.Popen | None = None  # None: an orphan of an earlier engine, watched by pid
    pid: int | None = None
    worker: _Worker | None = None  # the persistent worker running it (None: its own process)


class _Worker:
    """One slot's persistent worker process (golflab/cli/worker.py) and its reply channel."""

    def __init__(self, ex: Executor, env: dict[str, str], log: Path):
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen([ex.python, "-m", "golflab.cli.worker"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=fh, env=env, start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = b""

    def send(self, spec: RunSpec, argv: list[str]) -> None:
        job = {"argv": argv, "run_dir": str(spec.run_dir), "log": str(spec.run_dir / "stdout.log")}
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.flush()

    def reply(self) -> int | None:
        """The job's exit code once the worker answered; None while it runs."""
        try:
            chunk = self.proc.stdout.read()
        except (BlockingIOError, ValueError):
            chunk = None
        if chunk:
            self.buf += chunk
        if b"\n" not in self.buf:
            return None
        line, self.buf = self.buf.split(b"\n", 1)
        return int(json.loads(line)["rc"])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                stop_tree(self.proc)


class LocalBackend:
    """Runs on this machine's slots. `timeout_s` bounds a run's wall time; `on_start(spec, pid, slot)` lets
    the engine record a run in flight before it can finish. `workers`: one persistent worker per slot
    runs the slot's plain single-process runs (not code proposals, torchrun groups or a custom launcher);
    a run that crashes, times out or is cancelled takes its worker with it, and the next run starts a
    new one."""

    def __init__(self, slots: list[Slot], cache_dir: Path, executor: Executor | None = None,
                 timeout_s: float | None = None, workers: bool = False):
        self.workers = workers
        self._pool: dict[int, _Worker] = {}
        self._slots = slots
        self.cache_dir = cache_dir
        self.executor = executor or Executor()
        self.timeout_s = timeout_s
        self.active: dict[tuple[str, int], _Active] = {}
        cpu = [s for s in slots if not s.gpus]
        self.cpu_threads = max(1, (os.cpu_count() or 1) // len(cpu)) if len(cpu) > 1 else None
        self.on_start: OnStart | None = None

    def slots(self) -> int:
        return len(self._slots)

    def _free_slots(self) -> list[Slot]:
        busy = {a.slot.index for a in self.active.values()}
        return [s for s in self._slots if s.index not in busy]

    def free(self) -> int:
        return len(self._free_slots())

    def running(self) -> list[RunSpec]:
        return [a.spec for a in self.active.values()]

    def watch(self, spec: RunSpec, pid: int, slot_label: str | None, started_at: float | None) -> bool:
        """Adopt a still-running child of an earlier engine: it keeps a slot until it ends. False if it is gone."""
        pid = pid or find_pid(str(spec.run_dir)) or 0
        if not alive(pid, str(spec.run_dir)):
            return False
        free = self._free_slots()
        slot = next((s for s in free if s.label == slot_label), free[0] if free else Slot(-1 - len(self.active)))
        self.active[spec.ident] = _Active(spec, slot, started_at or time.time(), None, pid)
        return True

    def submit(self, spec: RunSpec) -> None:
        slot = self._free_slots()[0]
        if self.on_start:  # recorded before the child exists: a kill in between leaves a row to recover from
            self.on_start(spec, None, slot)
        prepare_run_dir(spec.run_dir, spec.config_toml)  # a killed attempt starts from scratch
        problem = spec.data.problem() if spec.data else None
        ex = self.executor
        trusted = spec.code is not None and ex.code_runner is not None
        env = ex.env(slot, self.cache_dir, self.cpu_threads, None if trusted else spec.code)
        if problem:  # fails this run only, with the reason in its log
            cmd = [ex.python, "-c", f"import sys; print({problem!r}); sys.exit(2)"]
        elif trusted:  # the harness trains with the proposal's code and measures with this golflab
            cmd = ex.code_runner(ex.python, spec.run_dir, spec.code, max(1, len(slot.gpus)))
        else:
            cmd = ex.train_cmd(spec.run_dir, max(1, len(slot.gpus)))
        if self.workers and not problem and spec.code is None and not ex.launcher and len(slot.gpus) <= 1:
            w = self._pool.get(slot.index)
            if w is None or not w.alive():
                w = self._pool[slot.index] = _Worker(ex, env, self.cache_dir / "workers" / f"{slot.label}.log")
            w.send(spec, cmd[3:])  # `python -m golflab` is the worker itself
            self.active[spec.ident] = _Active(spec, slot, time.time(), None, w.proc.pid, w)
            if self.on_start:
                self.on_start(spec, w.proc.pid, slot)
            return
        proc = ex.start(cmd, env, spec.run_dir / "stdout.log")
        self.active[spec.ident] = _Active(spec, slot, time.time(), proc, proc.pid)
        if self.on_start:
            self.on_start(spec, proc.pid, slot)

    def poll(self) -> list[RunOutcome]:
        done: list[RunOutcome] = []
        for ident, a in list(self.active.items()):
            if a.worker is not None:
                rc = a.worker.reply()
                running = rc is None and a.worker.alive()
                if rc is None and not running:  # the worker died with the job: crashed, and it is replaced
                    rc = a.worker.proc.returncode
                    self._pool.pop(a.slot.index, None)
            elif a.proc is not None:
                rc = a.proc.poll()
                running = rc is None
            else:
                rc, running = None, alive(a.pid, str(a.spec.run_dir))
            timed_out = running and self.timeout_s is not None and time.time() - a.started > self.timeout_s
            if running and not timed_out:
                continue
            if timed_out:
                self._stop(a)
            del self.active[ident]
            orphan = a.proc is None and a.worker is None
            done.append(outcome_of(a.spec, rc, bool(timed_out), self.timeout_s, a.slot, a.started, orphan))
        return done

    def _stop(self, a: _Active) -> None:
        if a.worker is not None:  # a job cannot be taken back from a worker: stop it, a new one comes
            stop_tree(a.worker.proc)
            self._pool.pop(a.slot.index, None)
        elif a.proc is not None:
            stop_tree(a.proc)
        else:
            stop_pid(a.pid, str(a.spec.run_dir))

    def cancel(self, ident: tuple[str, int]) -> None:
        a = self.active.pop(ident, None)
        if a is not None:
            self._stop(a)

    def close(self) -> None:
        for ident in list(self.active):
            self.cancel(ident)
        for w in self._pool.values():
            w.close()
        self._pool.clear()
