"""The local run backend: one child process per run on a slot (a GPU group, torchrun when it has several
GPUs, or a CPU slot with its share of the cores), started in its own session so that its whole tree can
be stopped and a Ctrl-C in the terminal reaches only the engine; or, with `workers`, a persistent worker
per slot (golflab/cli/worker.py) that runs the slot's plain runs one after another."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from golflab.engine.backend import (
    Executor,
    OnStart,
    RunOutcome,
    RunSpec,
    Slot,
    alive,
    find_pid,
    outcome_of,
    prepare_run_dir,
    stop_pid,
    stop_tree,
)


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
        cmd = ex.run_cmd(spec.run_dir, max(1, len(slot.gpus)), spec.code, problem)
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
