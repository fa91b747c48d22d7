"""The training processes of `golflab auto`: one child per run on a slot (a GPU group via torchrun, or a
CPU slot), started in its own session with its log file, stored when it ends, stopped as a tree.

A run's identity is (run key, seed); its directory is runs/<key>/seed<k>. The store's `inflight` table
names every child started, so a search killed with SIGKILL can stop its orphans on the next start.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from golflab.auto.candidate import Req
from golflab.auto.store import RunRow
from golflab.config.loader import to_toml
from golflab.lab.executor import Slot, prepare_run_dir, stop_orphan, stop_tree
from golflab.lab.outcome import finished_result, heldout_key, metric_value, read_json, run_values


@dataclass
class Active:
    req: Req
    proc: Any
    slot: Slot
    started: float
    run_dir: Any


class RunPool:
    def __init__(self, loop: Any):
        self.loop, self.store, self.metric = loop, loop.store, loop.s.metric
        self.slots: list[Slot] = loop.slots
        self.active: dict[tuple[str, int], Active] = {}

    def stop_orphans(self) -> None:
        for key, seed, pid, run_dir in self.store.inflight():
            stop_orphan(pid, run_dir)
            self.store.clear_inflight(key, seed)

    def free_slots(self) -> list[Slot]:
        busy = {a.slot.index for a in self.active.values()}
        return [s for s in self.slots if s.index not in busy]

    def adopt(self, r: Req) -> bool:
        """Store a run a killed search finished but never stored (its result.json is complete and its
        config.toml is this run's); False if there is none and the run must be trained."""
        run_dir = self.run_dir(r)
        result = finished_result(run_dir, self._toml(r))
        if result is None:
            return False
        self.store.put_run(r.key, r.seed, self._row(result, 0, 0.0, len(self.slots[0].gpus)), str(run_dir))
        self.store.adopted += 1
        self.loop.log(f"adopt {r.key} seed {r.seed}: finished before the last stop")
        return True

    def run_dir(self, r: Req) -> Path:
        return self.loop.out / "runs" / r.key / f"seed{r.seed}"

    def _toml(self, r: Req) -> str:
        return to_toml(self.loop.config(list(r.overrides), r.seed, r.fidelity))

    def _row(self, result: dict, rc: int | None, wall_s: float, gpus: int) -> RunRow:
        values = run_values(result, [], None)
        value = metric_value(values, self.metric)
        ok = rc == 0 and result.get("status") == "ok" and value is not None
        if not wall_s:  # adopted: the killed session's wall time is unknown; use the trainer's
            wall_s = float(result.get("train_seconds") or 0) + float(result.get("eval_seconds") or 0)
        return RunRow("ok" if ok else "crash", value if ok else None, result.get("peak_mem_gb"),
                      metric_value(values, heldout_key(self.metric)), wall_s, gpus)

    def start(self, r: Req, slot: Slot) -> None:
        run_dir = self.run_dir(r)
        prepare_run_dir(run_dir, self._toml(r))  # a killed attempt starts from scratch
        ex = dataclasses.replace(self.loop.executor, code_dir=r.code)
        proc = ex.start(ex.train_cmd(run_dir, max(1, len(slot.gpus))), slot, self.loop.out, run_dir / "stdout.log")
        self.store.mark_inflight(r.key, r.seed, proc.pid, str(run_dir))
        self.active[(r.key, r.seed)] = Active(r, proc, slot, time.monotonic(), run_dir)
        fid = f" (fidelity {r.fidelity:g})" if r.fidelity < 1 else ""
        self.loop.log(f"train {r.key} seed {r.seed}{fid} on {slot.label}")

    def reap(self) -> None:
        """Store every finished run: ok with its val and test metric, or crash (no value)."""
        for k, a in list(self.active.items()):
            rc = a.proc.poll()
            if rc is None:
                continue
            del self.active[k]
            result = read_json(a.run_dir / "result.json") or {}
            row = self._row(result, rc, time.monotonic() - a.started, len(a.slot.gpus))
            if row.status != "ok":
                self.loop.log(f"  {a.run_dir}: crashed (exit {rc}); see its stdout.log")
            self.store.put_run(a.req.key, a.req.seed, row, str(a.run_dir))
            self.store.trained += 1

    def stop(self, k: tuple[str, int]) -> None:
        """Stop a run and forget it (it is not stored: it would start from scratch if wanted again)."""
        a = self.active.pop(k)
        stop_tree(a.proc)
        self.store.clear_inflight(*k)

    def stop_all(self) -> None:
        for k in list(self.active):
            self.stop(k)
