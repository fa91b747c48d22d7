"""The lab runner: keep every slot busy with queued runs, record what they leave, repeat until done.

Each run is one child process with its own directory and log; whatever happens to it (crash, NaN,
OOM, timeout) is recorded on that run only. The store is the only state: a lab killed at any moment
(SIGKILL included) is resumed by running it again. Runs it finds "running" are stopped if their
process survived, and re-run from scratch; finished runs are never redone. On KeyboardInterrupt
(Ctrl-C, or SIGTERM mapped to it by the CLI) children are stopped and re-queued.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from golflab.errors import GolflabError
from golflab.lab.executor import Executor, Slot, make_slots, prepare_run_dir, stop_orphan, stop_tree
from golflab.lab.outcome import log_tail, metric_value, read_json, read_metrics, run_values
from golflab.lab.plan import BASELINE, Plan
from golflab.lab.schedule import LabView, Scheduler
from golflab.lab.store import Store
from golflab.train.runlog import code_version as runlog_code_version


def default_store_path(plan: Plan) -> Path:
    return plan.path.parent / f"{plan.name}.lab.sqlite"


def lab_dir_of(store_path: Path) -> Path:
    """`x.lab.sqlite` -> `x.lab/` (run directories, logs, inductor cache)."""
    return store_path.with_suffix("") if store_path.suffix == ".sqlite" else Path(f"{store_path}.d")


def code_version(cwd: Path | None = None) -> tuple[str, bool]:
    """(git SHA, dirty) of the repository in cwd; ("unknown", False) outside git."""
    sha, dirty = runlog_code_version(cwd or Path.cwd())
    return (sha, bool(dirty)) if sha else ("unknown", False)


def open_store(plan: Plan, store_path: Path | None = None, create: bool = True) -> Store:
    """Open the lab's store, recording the plan on first use and refusing a different plan later."""
    path = Path(store_path) if store_path else default_store_path(plan)
    if not create and not path.exists():
        raise GolflabError(f"no lab store at {path}; start the lab with `golflab lab run {plan.path}`")
    store = Store(path)
    digest = store.get_meta("plan_digest")
    if digest is None:
        store.set_meta("plan_text", plan.text)
        store.set_meta("plan_path", str(plan.path))
        store.set_meta("plan_overrides", json.dumps({"preset": plan.preset, "data": plan.data}))
        store.set_meta("created_at", str(time.time()))
        store.set_meta("plan_digest", plan.digest)
    elif digest != plan.digest and create:
        store.close()
        raise GolflabError(f"{path} belongs to a different version of plan {plan.name!r} (or other --preset/--data); "
                           "restore the plan, or give a new --store to start a new lab")
    return store


@dataclass
class Active:
    kind: str  # "run" or "eval"
    id: int
    proc: subprocess.Popen
    slot: Slot
    started: float
    run_dir: Path


@dataclass
class LabProgress:
    view: LabView
    active: list[Active]
    done: int
    queued: int
    mean_run_s: float | None
    slots: int
    best: tuple[str, float] | None  # arm with the lowest mean metric so far

    @property
    def eta_s(self) -> float | None:
        if self.mean_run_s is None:
            return None
        return self.mean_run_s * (self.queued + len(self.active)) / max(1, self.slots)


@dataclass
class Lab:
    plan: Plan
    store_path: Path | None = None
    executor: Executor = field(default_factory=Executor)
    slots: list[Slot] = field(default_factory=lambda: make_slots(None))
    timeout_s: float | None = None
    poll_s: float = 0.2
    on_progress: Callable[[LabProgress], None] | None = None

    def __post_init__(self) -> None:
        self.store_path = Path(self.store_path) if self.store_path else default_store_path(self.plan)
        self.lab_dir = lab_dir_of(self.store_path)
        self.active: list[Active] = []

    def run(self) -> LabView:
        store = open_store(self.plan, self.store_path)
        self.store = store
        self.code = code_version(Path.cwd())
        try:
            self._recover()
            scheduler = Scheduler(self.plan, store, self.lab_dir)
            view = scheduler.tick()
            while True:
                if self._reap():  # the state changed: re-derive what to do next
                    view = scheduler.tick()
                self._launch()
                if self.on_progress:
                    self.on_progress(self._progress(view))
                if not self.active and view.pending == 0:
                    return view
                time.sleep(self.poll_s)
        finally:
            self._stop_all()
            store.close()

    # --- recovery and shutdown
    def _recover(self) -> None:
        for r in self.store.runs():
            if r.status == "running":
                stop_orphan(r.pid, r.run_dir)
                self.store.requeue(r.id)
        for e in self.store.evals():
            if e.status == "running":
                stop_orphan(e.pid, self.store.run(e.run_id).run_dir)
                self.store.requeue_eval(e.id)

    def _stop_all(self) -> None:
        for a in self.active:
            stop_tree(a.proc)
            (self.store.requeue if a.kind == "run" else self.store.requeue_eval)(a.id)
        self.active = []

    # --- launching
    def _free_slots(self) -> list[Slot]:
        busy = {a.slot.index for a in self.active}
        return [s for s in self.slots if s.index not in busy]

    def _queue(self) -> list[tuple[str, int]]:
        """Queued work, evals first (short, they unblock decisions), then runs by arm priority and seed."""
        prio = {a.name: a.priority for a in self.plan.arms}
        evals = [("eval", e.id) for e in self.store.evals() if e.status == "queued"]
        runs = [r for r in self.store.runs() if r.status == "queued"]
        runs.sort(key=lambda r: (prio.get(r.arm, -1) if r.arm != BASELINE else -1, r.seed_index, r.id))
        return evals + [("run", r.id) for r in runs]

    def _launch(self) -> None:
        free = self._free_slots()
        for (kind, id_), slot in zip(self._queue(), free, strict=False):
            if kind == "run":
                self._start_run(id_, slot)
            else:
                self._start_eval(id_, slot)

    def _start_run(self, run_id: int, slot: Slot) -> None:
        row = self.store.run(run_id)
        run_dir = Path(row.run_dir)
        prepare_run_dir(run_dir, row.config_toml)  # a killed attempt starts from scratch
        cmd = self.executor.train_cmd(run_dir, max(1, len(slot.gpus)))
        proc = self.executor.start(cmd, slot, self.lab_dir, run_dir / "stdout.log")
        self.store.mark_running(run_id, proc.pid, slot.label, *self.code)
        self.active.append(Active("run", run_id, proc, slot, time.time(), run_dir))

    def _start_eval(self, eval_id: int, slot: Slot) -> None:
        e = next(x for x in self.store.evals() if x.id == eval_id)
        run_dir = Path(self.store.run(e.run_id).run_dir)
        out = run_dir / f"eval_{e.split}.json"
        out.unlink(missing_ok=True)
        cmd = self.executor.eval_cmd(run_dir, e.split, out)
        proc = self.executor.start(cmd, slot, self.lab_dir, run_dir / f"eval_{e.split}.log")
        self.store.mark_eval_running(eval_id, proc.pid)
        self.active.append(Active("eval", eval_id, proc, slot, time.time(), run_dir))

    # --- collecting
    def _reap(self) -> bool:
        still: list[Active] = []
        for a in self.active:
            rc = a.proc.poll()
            timed_out = rc is None and self.timeout_s and time.time() - a.started > self.timeout_s
            if rc is None and not timed_out:
                still.append(a)
                continue
            if timed_out:
                stop_tree(a.proc)
            if a.kind == "run":
                self._finish_run(a, rc, bool(timed_out))
            else:
                self._finish_eval(a, rc, bool(timed_out))
        changed = len(still) != len(self.active)
        self.active = still
        return changed

    def _finish_run(self, a: Active, rc: int | None, timed_out: bool) -> None:
        result = read_json(a.run_dir / "result.json")
        metrics = read_metrics(a.run_dir / "metrics.jsonl")
        values = run_values(result or {}, metrics, self.plan.target)
        tail = log_tail(a.run_dir)
        error = None
        if timed_out:
            status, error = "timeout", f"timed out after {self.timeout_s:.0f}s\n{tail}"
        elif result is None:
            status, error = "crashed", f"exit code {rc}, no result.json\n{tail}"
        elif result.get("status") != "ok" or rc != 0:
            status, error = "failed", f"{result.get('error') or f'exit code {rc}'}\n{tail}"
        elif metric_value(values, self.plan.metric) is None:
            what = "never reached the target" if self.plan.metric == "time_to_target" else "is missing or not finite"
            status, error = "failed", f"{self.plan.metric} {what}"
        else:
            status = "ok"
        device = (result or {}).get("device") or a.slot.label
        self.store.finish_run(a.id, status, error.strip() if error else None, values, device, metrics)

    def _finish_eval(self, a: Active, rc: int | None, timed_out: bool) -> None:
        e = next(x for x in self.store.evals() if x.id == a.id)
        out = read_json(a.run_dir / f"eval_{e.split}.json") or {}
        if timed_out:
            status, error = "timeout", f"timed out after {self.timeout_s:.0f}s"
        elif rc != 0 or not out:
            status, error = "failed", f"exit code {rc}\n{log_tail(a.run_dir, names=(f'eval_{e.split}.log',))}"
        else:
            status, error = "ok", None
        self.store.finish_eval(a.id, status, error, out)

    def _progress(self, view: LabView) -> LabProgress:
        from golflab.lab.schedule import seed_values

        runs = self.store.runs()
        done = [r for r in runs if r.done]
        times = [r.finished_at - r.started_at for r in done if r.started_at and r.finished_at]
        best = None
        for arm in view.arms:
            vals = list(seed_values([r for r in runs if r.arm == arm], self.plan.metric).values())
            if vals and (best is None or sum(vals) / len(vals) < best[1]):
                best = (arm, sum(vals) / len(vals))
        queued = sum(1 for r in runs if r.status == "queued")
        return LabProgress(view, list(self.active), len(done), queued, sum(times) / len(times) if times else None,
                           len(self.slots), best)
