"""The Ray run backend: each run is a detached Ray actor on one node, holding `procs_per_run` GPUs (or
`cpus_per_run` CPUs), so `torchrun --standalone` still works inside it. The actor checks the data
reference on its node, trains in a node-local directory and answers with what the run left there
(result.json, metrics, log tails); the driver writes those into the run's directory and classifies them
with the same `outcome_of` as the local backend.

Why detached, named actors rather than tasks: a task dies with its driver, an actor named after its run
outlives it, so a restarted driver finds the runs still in flight by name and waits for them (nothing is
trained twice), and a finished run that was never stored is adopted from its answer. A run whose node is
lost is re-queued on another one. Ray is imported lazily: golflab without it still imports and runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import hashlib
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from golflab.engine.backend import (
    Executor,
    OnStart,
    RunOutcome,
    RunSpec,
    Slot,
    outcome_of,
    prepare_run_dir,
    stop_tree,
)
from golflab.errors import GolflabError
from golflab.fileio import write_atomic

NAMESPACE = "golflab"
INSTALL_HINT = 'Ray is not installed; install the extra: pip install -e ".[ray]"'
MAX_ATTEMPTS = 3  # a run whose node is lost this many times is reported crashed
TAIL_BYTES = 64_000  # of each log shipped back
SCRATCH_ENV = "GOLFLAB_RAY_RUNS"  # where nodes keep their run directories (default: the temp dir)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise GolflabError(f"--backend ray: {INSTALL_HINT}") from None
    return ray


def actor_name(run_dir: Path) -> str:
    """The run's actor name: the same for every driver of this lab (host and run directory)."""
    return "run-" + hashlib.sha256(f"{socket.gethostname()}:{Path(run_dir).resolve()}".encode()).hexdigest()[:24]


def time_budgeted(config_toml: str) -> bool:
    from golflab.config.loader import tomllib

    try:
        return float(tomllib.loads(config_toml).get("budget", {}).get("seconds", 0) or 0) > 0
    except (tomllib.TOMLDecodeError, TypeError, ValueError):
        return False


def gpu_types(nodes: list[dict[str, Any]]) -> dict[str, str | None]:
    """node id -> its GPU type (Ray's `accelerator_type:X` resource; None if unlabelled) of alive GPU nodes."""
    out: dict[str, str | None] = {}
    for n in nodes:
        res = n.get("Resources", {})
        if n.get("Alive") and res.get("GPU", 0) > 0:
            kinds = [k.split(":", 1)[1] for k in res if k.startswith("accelerator_type:")]
            out[n["NodeID"]] = kinds[0] if kinds else None
    return out


def mixed_hardware(nodes: list[dict[str, Any]]) -> str | None:
    """Why a time-budgeted plan cannot run on these nodes (None: it can). Paired seeds compare arms run for
    the same seconds; on different GPUs they train different numbers of steps, so the pairing would
    measure the hardware. Refusing is simpler and safer than pinning seed k to one type."""
    kinds = set(gpu_types(nodes).values())
    if len(kinds) > 1:
        names = ", ".join(sorted(k or "unlabelled" for k in kinds))
        return (f"the Ray cluster mixes GPU types ({names}); a time-budgeted plan pairs seeds across arms, "
                "which needs one GPU type: use nodes of one type, or a step budget")
    return None


def _die_with_parent() -> None:
    """In the trainer child: SIGKILL it when the actor's thread that started it dies (a lost node, a killed
    actor), so no trainer outlives its run."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _reap_group(pgid: int, grace: float) -> None:
    """stop_tree waits for the group's leader; the rest of its tree (torchrun's workers, a wrapper's
    children) gets `grace` seconds more to exit after the SIGTERM, then SIGKILL."""
    end = time.monotonic() + grace
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def pack_code(code: Path) -> bytes:
    """A code proposal's export as a gzipped tar (without .git): what travels to the node with its run.
    (Ray's per-actor working_dir takes only remote URIs; a local directory uploads only for a whole job.)"""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(code, arcname=".", filter=lambda t: None if ".git" in Path(t.name).parts else t)
    return buf.getvalue()


def unpack_code(blob: bytes, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12: no links or paths out of `into`
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)  # our own archive, made by pack_code
    return into


def _tail(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - TAIL_BYTES))
            return fh.read().decode(errors="replace")
    except OSError:
        return None


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


class RunHost:
    """The actor that runs one RunSpec on its node. It starts the run when it is created, so an actor that
    exists is a run that started: a driver killed at any moment leaves no idle actor to wait for."""

    def __init__(self, spec: RunSpec, ex: Executor, timeout_s: float | None, cpu_threads: int | None,
                 code: bytes | None = None) -> None:
        self._proc: subprocess.Popen | None = None
        self._done = threading.Event()
        self._answer: dict[str, Any] = {}
        self._stopped = False
        self._lock = threading.Lock()  # a stop and the trainer's start never cross
        # the trainer is this thread's child: it dies with the thread (PR_SET_PDEATHSIG), not before
        threading.Thread(target=self._main, args=(spec, ex, timeout_s, cpu_threads, code), daemon=True).start()

    def _main(self, spec: RunSpec, ex: Executor, timeout_s: float | None, cpu_threads: int | None,
              code: bytes | None) -> None:
        try:
            self._answer = self._run(spec, ex, timeout_s, cpu_threads, code)
        except Exception as exc:  # the driver still gets an answer: the run crashed, with the reason
            self._answer = {"rc": None, "files": {"stdout.log": f"ray backend: {type(exc).__name__}: {exc}\n"}}
        finally:
            self._done.set()

    def answer(self) -> dict[str, Any]:
        """The run's answer once it ended (a restarted driver waits here for a run still in flight)."""
        self._done.wait()
        return self._answer

    def stop(self) -> None:
        with self._lock:
            self._stopped, proc = True, self._proc
        if proc is not None:
            stop_tree(proc, grace=5.0)
            _reap_group(proc.pid, grace=5.0)

    def _run(self, spec: RunSpec, ex: Executor, timeout_s: float | None, cpu_threads: int | None,
             blob: bytes | None) -> dict[str, Any]:
        import ray

        ctx = ray.get_runtime_context()
        gpus = tuple(int(g) for g in ctx.get_accelerator_ids().get("GPU", []))
        node = f"{socket.gethostname()}:{ctx.get_node_id()[:8]}"
        root = Path(os.environ.get(SCRATCH_ENV) or Path(tempfile.gettempdir()) / "golflab-ray")
        run_dir = root / f"{actor_name(spec.run_dir)}-{uuid.uuid4().hex[:8]}"  # a lingering attempt never shares it
        prepare_run_dir(run_dir, spec.config_toml)
        ex = dataclasses.replace(ex, python=sys.executable)  # the driver's interpreter path may not exist here
        code = unpack_code(blob, run_dir.with_name(run_dir.name + "-code")) if blob is not None else None
        slot = Slot(0, gpus)
        trusted = code is not None and ex.code_runner is not None
        env = ex.env(slot, root, cpu_threads, None if trusted else code)
        cmd = ex.run_cmd(run_dir, max(1, len(gpus)), code, spec.data.problem() if spec.data else None)
        timed_out = False
        with self._lock:
            if not self._stopped:
                self._proc = ex.start(cmd, env, run_dir / "stdout.log", _die_with_parent)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                stop_tree(self._proc)
                _reap_group(self._proc.pid, grace=5.0)
        rc = self._proc.returncode if self._proc else None
        files = {"result.json": _text(run_dir / "result.json"), "metrics.jsonl": _text(run_dir / "metrics.jsonl"),
                 "stdout.log": _tail(run_dir / "stdout.log"), "train.log": _tail(run_dir / "train.log")}
        return {"rc": rc, "timed_out": timed_out, "files": files, "node": node, "node_run_dir": str(run_dir),
                "slot": f"{node}/{slot.label}", "gpus": len(gpus)}


@dataclass
class _Run:
    spec: RunSpec
    actor: Any
    ref: Any  # the ObjectRef of its answer
    started: float
    attempts: int = 1
    adopted: bool = False  # started by an earlier driver


class RayBackend:
    """Runs on a Ray cluster (`address`, e.g. "ray://head:10001" or "head:6379"), or on a local Ray instance
    started here when there is none, with `local_cpus` CPUs and the GPUs of CUDA_VISIBLE_DEVICES.
    `use_gpus`: None uses the cluster's GPUs if it has any; a run holds `procs_per_run` GPUs on one node
    (else `cpus_per_run` CPUs). `timeout_s` bounds a run's wall time on its node. `log` receives lines
    about lost nodes and re-queued runs."""

    def __init__(self, executor: Executor | None = None, timeout_s: float | None = None, address: str | None = None,
                 procs_per_run: int = 1, cpus_per_run: int = 1, use_gpus: bool | None = None,
                 local_cpus: int | None = None, log: Callable[[str], None] | None = None):
        self.ray = ray = import_ray()
        self._own = False
        if not ray.is_initialized():
            kw: dict[str, Any] = {"namespace": NAMESPACE, "logging_level": logging.ERROR, "log_to_driver": False}
            if address:
                try:
                    ray.init(address=address, **kw)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise GolflabError(f"--ray-address {address}: cannot connect to a Ray cluster ({exc})") from None
            else:
                ray.init(num_cpus=local_cpus, include_dashboard=False, **kw)
                self._own = True
        self.executor = executor or Executor()
        self.timeout_s = timeout_s
        self.procs_per_run = max(1, procs_per_run)
        self.cpus_per_run = max(1, cpus_per_run)
        self.use_gpus = ray.cluster_resources().get("GPU", 0) >= self.procs_per_run if use_gpus is None else use_gpus
        self.log = log or (lambda msg: None)
        self.active: dict[tuple[str, int], _Run] = {}
        self.on_start: OnStart | None = None
        self._cls = ray.remote(max_concurrency=4, max_restarts=0)(RunHost)
        self._code: dict[Path, Any] = {}  # a proposal's packed code, put once for all its seeds
        self._nodes: list[dict[str, Any]] = []
        self._nodes_at = 0.0

    # -- the cluster
    def nodes(self) -> list[dict[str, Any]]:
        if time.monotonic() - self._nodes_at > 2.0:  # an RPC to the cluster: the engine asks every tick
            self._nodes, self._nodes_at = [n for n in self.ray.nodes() if n.get("Alive")], time.monotonic()
        return self._nodes

    def slots(self) -> int:
        per = ("GPU", self.procs_per_run) if self.use_gpus else ("CPU", self.cpus_per_run)
        return sum(int(n.get("Resources", {}).get(per[0], 0) // per[1]) for n in self.nodes())

    def free(self) -> int:
        return max(0, self.slots() - len(self.active))

    def running(self) -> list[RunSpec]:
        return [r.spec for r in self.active.values()]

    # -- runs
    def _launch(self, spec: RunSpec) -> tuple[Any, Any]:
        opts: dict[str, Any] = {"name": actor_name(spec.run_dir), "namespace": NAMESPACE, "lifetime": "detached",
                                "num_cpus": self.cpus_per_run, "num_gpus": self.procs_per_run if self.use_gpus else 0}
        code = None
        if spec.code is not None:  # the proposal's code travels with the run, not by a shared path
            code = self._code.get(spec.code) or self._code.setdefault(spec.code, self.ray.put(pack_code(spec.code)))
        actor = self._cls.options(**opts).remote(spec, self.executor, self.timeout_s, self.cpus_per_run, code)
        return actor, actor.answer.remote()

    def submit(self, spec: RunSpec) -> None:
        if self.use_gpus and time_budgeted(spec.config_toml) and (why := mixed_hardware(self.nodes())):
            raise GolflabError(why)
        slot = Slot(-1)
        if self.on_start:  # recorded before the actor exists: a kill in between leaves a row to recover from
            self.on_start(spec, None, slot)
        prepare_run_dir(spec.run_dir, spec.config_toml)  # config.toml here: a finished run can be adopted
        self._kill(actor_name(spec.run_dir))  # an earlier attempt's actor nobody waits for any more
        actor, ref = self._launch(spec)
        self.active[spec.ident] = _Run(spec, actor, ref, time.time())

    def watch(self, spec: RunSpec, pid: int, slot_label: str | None, started_at: float | None) -> bool:
        """Wait for a run an earlier driver left in flight (its actor is found by name). False if it is gone."""
        try:
            actor = self.ray.get_actor(actor_name(spec.run_dir), namespace=NAMESPACE)
        except ValueError:
            return False
        self.active[spec.ident] = _Run(spec, actor, actor.answer.remote(), started_at or time.time(), adopted=True)
        return True

    def poll(self) -> list[RunOutcome]:
        refs = {r.ref: ident for ident, r in self.active.items()}
        if not refs:
            return []
        ready, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=0)
        done: list[RunOutcome] = []
        for ref in ready:
            r = self.active[refs[ref]]
            try:
                answer = self.ray.get(ref)
            except self.ray.exceptions.RayActorError as exc:  # its node was lost (or its actor killed)
                if r.attempts < MAX_ATTEMPTS:
                    self._requeue(r, exc)
                    continue
                answer = {"rc": None, "files": {"stdout.log": f"ray backend: lost {MAX_ATTEMPTS} times: {exc}\n"}}
            del self.active[refs[ref]]
            done.append(self._outcome(r, answer))
            self.ray.kill(r.actor)
        return done

    def _requeue(self, r: _Run, exc: Exception) -> None:
        first = str(exc).strip().splitlines()
        self.log(f"{r.spec.label}: its node or actor was lost ({first[-1] if first else 'no reason'}); re-queued")
        r.actor, r.ref = self._launch(r.spec)
        r.attempts += 1
        r.adopted = False
        r.started = time.time()

    def _outcome(self, r: _Run, answer: dict[str, Any]) -> RunOutcome:
        """Write what the node shipped into the run's directory (result.json last), then classify it there."""
        files = answer.get("files") or {}
        for name in ("metrics.jsonl", "stdout.log", "train.log", "result.json"):
            if files.get(name) is not None:
                write_atomic(r.spec.run_dir / name, files[name])
        out = outcome_of(r.spec, answer.get("rc"), bool(answer.get("timed_out")), self.timeout_s, Slot(-1),
                         r.started, r.adopted)
        out.node = answer.get("node") or out.node
        out.slot = answer.get("slot") or out.slot
        out.gpus = int(answer.get("gpus") or 0)
        return out

    def _kill(self, name: str) -> None:
        """Kill a stale actor of this name and wait until the name is free (ray.kill is asynchronous)."""
        for i in range(100):
            try:
                actor = self.ray.get_actor(name, namespace=NAMESPACE)
            except ValueError:
                return
            if i == 0:
                self.ray.kill(actor)
            time.sleep(0.1)

    def cancel(self, ident: tuple[str, int]) -> None:
        """Stop the run's trainer and its whole process tree on its node, then the actor."""
        r = self.active.pop(ident, None)
        if r is None:
            return
        # a dead actor took its trainer with it (the child dies with the thread that started it)
        with contextlib.suppress(self.ray.exceptions.RayError, TimeoutError):
            self.ray.get(r.actor.stop.remote(), timeout=30)
        self.ray.kill(r.actor)

    def close(self) -> None:
        for ident in list(self.active):
            self.cancel(ident)
        if self._own:
            self.ray.shutdown()
