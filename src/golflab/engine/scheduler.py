"""The one engine: experiments in flight on every slot, proposals from a background thread, decisions
committed in idx order, runs adopted rather than retrained, budgets, and a clean stop.

Semantics (docs/ARCHITECTURE.md has the picture):
- at most one undecided experiment per slot is in flight; each asks for the runs it needs, and runs are
  identified by (run key, seed), so a baseline seed two experiments need is trained once;
- decisions are committed in idx order (a finished experiment waits for the ones before it);
- when a keep is committed, every later experiment still in flight that is judged against "the current
  baseline" was started on the old one: it is re-based, i.e. merged onto the new kept config and run again
  (its runs still in flight are stopped). A pruned or rejected one stays as it is (the short-run screening
  is deterministic, see feed.py), a code proposal built on other code than the new kept code is discarded
  as stale, and one with an explicit reference (a plan arm) keeps it. So experiment k is always judged
  against the baseline made by decisions 0 .. k-1 (or its named reference), whatever the timing;
- nothing is trained twice: before a run starts, a finished result.json of the same config in its run
  directory is adopted; at start-up, children a killed engine left running are waited for and adopted.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from golflab.config.loader import to_dict, to_toml
from golflab.engine.backend import DataRef, RunOutcome, RunSpec, Slot, outcome_of
from golflab.engine.budget import Budget
from golflab.engine.feed import Feed, Ready
from golflab.engine.flow import Base, Candidate, Flow, Outcome, Prune, Req, baseline_flow, candidate_flow
from golflab.engine.outcome import finished_result, metric_value, run_values
from golflab.engine.proposal import Proposal
from golflab.engine.session import Decision, Session, merge_overrides, run_key
from golflab.engine.store import RunRow
from golflab.errors import GolflabError

OUTPUT_EVERY_S = 30.0


@dataclass
class Progress:
    """What a live display shows: candidates in flight, runs in flight, counts."""

    candidates: list[Candidate]
    running: list[RunSpec]
    decided: int
    stored_runs: int
    slots: int
    draining: str


class Engine:
    def __init__(self, session: Session, on_progress: Callable[[Progress], None] | None = None):
        self.sn, self.s, self.store = session, session.s, session.store
        self.backend = session.backend
        self.backend.on_start = self._on_start
        self.orphans: set[tuple[str, int]] = set()  # runs a killed engine left running: waited for, never stopped
        self.on_progress = on_progress
        self.budget = Budget(self.store, self.s.hours, self.s.gpu_hours, self.s.max_experiments)
        self.cands: dict[int, Candidate] = {}
        self.futures: dict[int, Future] = {}
        self.history: list[Base] = []  # the baseline after decision i
        self.named: dict[str, Base] = {}  # experiment name -> its config as a reference (plan refs)
        self.next_commit = 0
        self.claimed = 0
        self.draining = ""  # why nothing new starts
        self.interrupts = 0  # Ctrl-C count
        self.hard = False  # stop the runs in flight now (second Ctrl-C, SIGTERM)
        self.peak_busy = 0  # most runs in flight at once
        self.peak_cands = 0  # most distinct candidates with runs in flight at once
        self._outputs_at = time.monotonic()
        self.data = DataRef.of(self.s.data)
        # bind() may have restored kept changes and pointed base_code at the branch the agent starts from
        self.base = self._base(0, "baseline", list(session.kept_overrides), session.base_code, session.base_code_rev)
        self.history.append(self.base)  # decision 0 (the baseline) does not change it
        self.named["baseline"] = self.base
        self.store.set_meta("slots", str(self.backend.slots()))  # this session's: the training share's divisor
        window = self.store.get_meta("window")  # kept across resumes: the proposal order depends on it
        slots = self.backend.slots()
        lookahead = self.s.lookahead or slots
        if window is None:
            window = str(slots + lookahead)
            self.store.set_meta("window", window)
        horizon = self.store.get_meta("horizon")  # the search-wide alpha is spread over this many experiments
        if horizon is None:
            horizon = str(self.s.max_experiments or "")
            self.store.set_meta("horizon", horizon)
        self.judging = dataclasses.replace(self.s.judging(), horizon=int(horizon) if horizon else None)
        self.feed = Feed(session.proposer, int(window), lookahead, self.s.max_experiments, self._base_at, self._known,
                         self._key_of, session.log, lambda: session.base_code_rev)

    @property
    def active(self) -> list[RunSpec]:
        return self.backend.running()

    # -- bases and identities
    def _base(self, idx: int, name: str, overrides: list[str], code: Path | None, rev: str) -> Base:
        h, key = self.sn.ident(overrides, rev)
        return Base(idx, name, tuple(overrides), code, rev, key, h, to_dict(self.sn.config(overrides, 0)))

    def _base_at(self, idx: int) -> Base:
        return self.history[min(idx, len(self.history) - 1)]

    def _key_of(self, base: Base, prop: Proposal) -> str:
        ref = self.named.get(prop.ref, base) if prop.ref else base
        rev = prop.code_rev if prop.code is not None else ref.code_rev
        return self.sn.ident(merge_overrides(list(ref.overrides), prop.overrides), rev)[1]

    def _known(self, upto: int, key: str) -> tuple[bool, float | None]:
        for d in list(self.sn.decisions):
            if d.idx <= upto and d.cfg_hash and run_key(d.cfg_hash, d.code_rev) == key:
                return True, d.mean
        return False, None

    # -- the main loop
    def run(self) -> str:
        self._recover()
        seeds = self.s.seeds(self.s.baseline_seeds or self.s.seeds_min)
        base = Candidate(0, None, self.base, self.base.overrides, self.base.key, self.base.cfg_hash, self.base.code,
                         self.base.code_rev, True)
        self._start_flow(base, baseline_flow(self.base, seeds, self.s.metric))
        self.cands[0] = base
        self.sn.running = True
        prev = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):  # flags, not exceptions: a commit is never cut in half
                prev[sig] = signal.signal(sig, self._on_signal)
        try:
            self.feed.start()
            while True:
                reason = self._tick()
                if reason:
                    return reason
                time.sleep(self.sn.poll_s)
        finally:
            self.sn.running = False
            for spec in self.active:  # stopped here: not in flight any more (a rerun trains them afresh)
                if spec.ident not in self.orphans:
                    self.store.clear_inflight(*spec.ident)
            self.backend.close()
            self.budget.save(force=True)
            self.feed.stop()
            if not self.feed.thread.is_alive():
                self.feed.flush()
            self.sn.write_outputs()
            for sig, handler in prev.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        """Ctrl-C: start nothing new and let the runs in flight finish; a second one, or SIGTERM, stops them."""
        if signum == signal.SIGTERM or self.interrupts:
            self.hard = True
        self.interrupts += 1

    def _drain(self, why: str) -> None:
        if not self.draining:
            self.draining = why
            self.sn.log(f"stopping: {why}; letting {len(self.active)} run(s) in flight finish")
            self.feed.pause()

    def _tick(self) -> str | None:
        if self.hard:
            return "interrupted: runs in flight were stopped; rerun the same command to resume"
        if self.interrupts:
            self._drain("interrupted (Ctrl-C again stops the runs in flight); rerun the same command to resume")
        self._reap()
        if not self.draining and (why := self.budget.time_reason()):
            self._drain(why)
        self._claim()
        self._advance()
        self._commit()
        self.budget.save()
        if self.on_progress:
            self.on_progress(Progress(list(self.cands.values()), self.active, len(self.sn.decisions),
                                      self.store.run_count(), self.backend.slots(), self.draining))
        if self.draining and not self.active:
            return self.draining
        if len(self.cands) == 0 and self.feed.done():
            if self.budget.experiments_left(self.claimed):
                return "the proposer is exhausted (nothing left to propose)"
            return f"--max-experiments reached ({self.claimed})"
        if not self.draining:
            self._launch()
        self._stop_unwanted()
        if time.monotonic() - self._outputs_at > OUTPUT_EVERY_S:
            self.sn.write_outputs()
            self._outputs_at = time.monotonic()
        return None

    # -- candidates
    def _claim(self) -> None:
        while not self.draining and sum(not c.decided for c in self.cands.values()) < self.backend.slots():
            ready = self.feed.take()
            if ready is None:
                return
            self.claimed = ready.idx
            self.cands[ready.idx] = self._make(ready, None)

    def _make(self, r: Ready, old: Candidate | None) -> Candidate:
        p = r.prop
        b = self.base
        if p.ref:
            if p.ref not in self.named:
                raise GolflabError(f"{p.name}: its reference {p.ref!r} has no committed config yet")
            b = self.named[p.ref]
        code, rev = (p.code, p.code_rev) if p.code is not None else (b.code, b.code_rev)
        overrides = merge_overrides(list(b.overrides), p.overrides)
        h, key = self.sn.ident(overrides, rev)
        c = Candidate(r.idx, p, b, tuple(overrides), key, h, code, rev, old.prune_passed if old else p.fidelity >= 1.0)
        c.ready = r
        self.store.put_experiment(r.idx, p.name, {"name": p.name, "overrides": list(p.overrides), "key": key,
                                                  "ref": b.name, "ref_key": b.key, "crn": p.crn,
                                                  "seeds": list(p.seeds) if p.seeds else None})
        if p.skipped:
            c.outcome = Outcome("skipped", note=p.skipped)
        elif p.rejected:
            c.outcome = Outcome("rejected", note=p.rejected)
        elif p.code is not None and r.code_rev != b.code_rev and not p.ref:
            c.outcome = Outcome("discard", note=f"stale: built on code {r.code_rev[:7] or 'installed'}, but "
                                               f"{b.code_rev[:7] or 'installed'} was kept meanwhile", stale=True)
        elif key == b.key:
            c.outcome = Outcome("discard", note=f"same config as {b.name}")
        else:
            short = None
            if p.fidelity < 1.0:  # screened on the baseline it was proposed on: timing cannot change it
                sb = r.base
                s_code, s_rev = (p.code, p.code_rev) if p.code is not None else (sb.code, sb.code_rev)
                s_over = tuple(merge_overrides(list(sb.overrides), p.overrides))
                short = Req(self.sn.ident(s_over, s_rev, p.fidelity)[1], self.sn.seeds[0], s_over, p.fidelity,
                            s_code, s_rev, p.name)
            n_seeds = max(self.s.seeds_max, p.seeds[1] if p.seeds else 0)
            self._start_flow(c, candidate_flow(c, self.judging, self.s.seeds(n_seeds), short))
        return c

    def _start_flow(self, c: Candidate, flow: Flow) -> None:
        c.flow = flow
        self._send(c, None)

    def _send(self, c: Candidate, value: dict[Req, RunRow] | bool | None) -> None:
        try:
            c.waiting = c.flow.send(value)
        except StopIteration as stop:
            c.outcome, c.waiting = stop.value, None

    def _advance(self) -> None:
        for idx in sorted(self.cands):
            c = self.cands[idx]
            while not c.decided:
                w = c.waiting
                if isinstance(w, Prune):
                    if not self._prune_answer(c, w):
                        break
                    self._send(c, w.answer)
                    continue
                assert w is not None
                res = {r: self.store.get_run(r.key, r.seed) for r in w}
                if any(v is None for v in res.values()):
                    break
                self._send(c, res)

    def _prune_answer(self, c: Candidate, w: Prune) -> bool:
        """Prune questions go to the proposer in idx order (its pruner compares with earlier candidates)."""
        assert c.prop is not None
        if c.idx not in self.futures:
            if any(not (o.prune_passed or o.decided) for i, o in self.cands.items() if 0 < i < c.idx):
                return False
            self.futures[c.idx] = self.feed.ask_prune(c.prop, w.value)
        fut = self.futures[c.idx]
        if not fut.done():
            return False
        w.answer = fut.result()
        del self.futures[c.idx]
        return True

    def _commit(self) -> None:
        while self.next_commit in self.cands and self.cands[self.next_commit].decided:
            c = self.cands.pop(self.next_commit)
            o = c.outcome
            assert o is not None
            if c.idx == 0 and o.status != "keep":
                raise GolflabError(f"the baseline failed: {o.note} (run directories under {self.sn.out / 'runs'})")
            p = c.prop
            own = list(p.overrides) if p else list(c.overrides)
            key = "" if o.status in ("rejected", "skipped") else c.key
            self.sn.decide(Decision(c.idx, c.name, own, key, c.cfg_hash if key else "", o, c.code_rev, c.base.name,
                                    c.base.key, c.base.idx, p.diff if p else "", p.description if p else ""))
            if c.idx > 0 and o.status not in ("rejected", "skipped"):
                self.named[c.name] = self._base(c.idx, c.name, list(c.overrides), c.code, c.code_rev)
            kept = c.idx > 0 and o.status == "keep"
            if kept:
                self.base = self.named[c.name]
                self.sn.kept_overrides = list(c.overrides)
                self.sn.base_code, self.sn.base_code_rev = c.code, c.code_rev
                self._rebase()
            if c.idx > 0:
                self.history.append(self.base)
            value = None if o.status in ("crash", "rejected", "skipped") or o.stale else o.mean
            self.feed.commit(c.idx, p, value, o.pruned, kept)
            self.next_commit += 1

    def _rebase(self) -> None:
        for idx, c in list(self.cands.items()):
            o = c.outcome
            if (o is not None and (o.status in ("rejected", "skipped") or o.pruned)) or (c.prop and c.prop.ref):
                continue
            if c.flow is not None:
                c.flow.close()
            assert c.ready is not None
            self.cands[idx] = self._make(c.ready, c)
            self.sn.log(f"{c.name}: re-based onto the new baseline (decision {self.base.idx})")

    # -- runs
    def _wanted(self) -> list[Req]:
        """Runs the candidates wait for, round-robin over candidates in idx order (so several candidates
        train at once rather than one taking every slot), each run once."""
        lists = [w for i in sorted(self.cands) if isinstance(w := self.cands[i].waiting, list)]
        out: dict[tuple[str, int], Req] = {}
        for k in range(max((len(w) for w in lists), default=0)):
            for w in lists:
                if k < len(w):
                    out.setdefault((w[k].key, w[k].seed), w[k])
        return list(out.values())

    def _spec(self, r: Req) -> RunSpec:
        toml = to_toml(self.sn.config(list(r.overrides), r.seed, r.fidelity))
        run_dir = self.sn.out / "runs" / (f"{r.name}-{r.key[:8]}" if r.name else r.key) / f"seed{r.seed}"
        return RunSpec(r.key, r.seed, run_dir, toml, r.code, r.code_rev, self.data,
                       f"{r.key} seed {r.seed}" + (f" (fidelity {r.fidelity:g})" if r.fidelity < 1 else ""))

    def _launch(self) -> None:
        running = {s.ident for s in self.active}
        for r in self._wanted():
            if not self.backend.free():
                break
            if (r.key, r.seed) in running or self.store.get_run(r.key, r.seed) is not None:
                continue
            spec = self._spec(r)
            if self._adopt(spec):
                continue
            self.backend.submit(spec)
            self.sn.log(f"train {spec.label}")
        self.peak_busy = max(self.peak_busy, len(self.active))
        keys = {s.key for s in self.active}
        owners = {i for i, c in self.cands.items() if i > 0 and isinstance(c.waiting, list) and c.key in keys}
        self.peak_cands = max(self.peak_cands, len(owners))

    def _on_start(self, spec: RunSpec, pid: int | None, slot: Slot) -> None:
        self.store.mark_inflight(spec.key, spec.seed, pid, str(spec.run_dir), slot.label)

    def _adopt(self, spec: RunSpec) -> bool:
        """Store a run a killed engine finished but never stored (its result.json is complete and its
        config.toml is this run's); False if there is none and the run must be trained."""
        if spec.code is not None:  # a proposal's code could have left that file: only a measured run counts
            return False
        result = finished_result(spec.run_dir, spec.config_toml)
        if result is None:
            return False
        out = outcome_of(spec, 0, False, None, Slot(-1), time.time(), adopted=True)
        out.wall_s = float(result.get("train_seconds") or 0) + float(result.get("eval_seconds") or 0)
        self._store_outcome(out)
        self.sn.log(f"adopt {spec.label}: finished before the last stop")
        return True

    def _recover(self) -> None:
        """Children a killed engine left: still running -> waited for (they keep a slot); ended -> adopted
        if they finished, else forgotten (trained again when wanted)."""
        for f in self.store.inflight():
            toml = _read(Path(f.run_dir) / "config.toml")
            spec = RunSpec(f.key, f.seed, Path(f.run_dir), toml or "", data=self.data, label=f"{f.key} seed {f.seed}")
            if self.backend.watch(spec, f.pid or 0, f.slot, f.started_at):  # pid 0: looked up by run dir
                self.orphans.add(spec.ident)
                self.sn.log(f"waiting for {spec.label}: still running from the last session")
            elif toml is None or not self._adopt(spec):
                self.store.clear_inflight(f.key, f.seed)

    def _reap(self) -> None:
        for out in self.backend.poll():
            self._store_outcome(out)

    def _store_outcome(self, out: RunOutcome) -> None:
        spec = out.spec
        values = run_values(out.result, out.metrics, self.s.target)
        status, error = out.status, out.error
        censored = self.s.metric == "time_to_target" and values.get("time_to_target") == math.inf
        if status == "ok" and metric_value(values, self.s.metric) is None and not censored:
            what = "never reached the target" if self.s.metric == "time_to_target" else "is missing or not finite"
            status, error = "failed", f"{self.s.metric} {what}"
        if status != "ok":
            self.sn.log(f"  {spec.run_dir}: {status}; see its stdout.log")
        self.store.put_run(RunRow(spec.key, spec.seed, status, values, str(spec.run_dir), error, out.wall_s, out.gpus,
                                  out.node, out.result.get("device"), out.started_at, None, out.adopted,
                                  spec.code_rev), out.metrics)
        if out.adopted:
            self.store.adopted += 1
        else:
            self.store.trained += 1

    def _stop_unwanted(self) -> None:
        """Runs no candidate waits for any more (its candidate was re-based) are stopped, not stored."""
        wanted = {(r.key, r.seed) for r in self._wanted()}
        for spec in self.active:
            if spec.ident not in wanted and spec.ident not in self.orphans:
                self.backend.cancel(spec.ident)
                self.store.clear_inflight(*spec.ident)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None
