"""The scheduler of `golflab auto`: candidates in flight on every slot, proposals from a background
thread, decisions committed in idx order, budgets, and a clean stop.

Concurrency semantics (also in docs/auto.md):
- at most one undecided candidate per slot is in flight; each asks for the runs it needs, and runs are
  identified by (run key, seed), so a baseline seed two candidates need is trained once;
- decisions are committed in idx order (a finished candidate waits for the ones before it);
- when a keep is committed, every later candidate still in flight or waiting to be committed was started
  on the old baseline: it is re-based, i.e. merged onto the new kept config and run again (nothing judged
  on the old baseline is reused; its runs still in flight are stopped). A pruned or rejected one stays
  as it is: the short-run screening always runs on the baseline the proposal was made on (deterministic,
  see feed.py), and is not repeated. A code proposal built on other code than the new kept code is
  discarded as stale. So candidate k is always judged against the baseline made by decisions 0 .. k-1,
  whatever the timing.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

from golflab.auto.budget import Budget
from golflab.auto.candidate import Base, Candidate, Outcome, Prune, Req, baseline_flow, candidate_flow
from golflab.auto.feed import Feed, Ready
from golflab.auto.loop import Decision, merge_overrides
from golflab.auto.pool import RunPool
from golflab.auto.store import RunRow
from golflab.config.loader import to_dict
from golflab.errors import GolflabError
from golflab.fileio import write_atomic
from golflab.lab.executor import Slot

OUTPUT_EVERY_S = 30.0


class Engine:
    def __init__(self, loop: Any):
        self.loop, self.s, self.store = loop, loop.s, loop.store
        self.slots: list[Slot] = loop.slots
        self.budget = Budget(self.store, self.s.hours, self.s.gpu_hours, self.s.max_experiments)
        self.cands: dict[int, Candidate] = {}
        self.pool = RunPool(loop)
        self.active = self.pool.active  # (run key, seed) -> the run in flight
        self.futures: dict[int, Any] = {}
        self.history: list[Base] = []  # the baseline after decision i
        self.next_commit = 0
        self.claimed = 0
        self.draining = ""  # why nothing new starts
        self.interrupts = 0  # Ctrl-C count
        self.hard = False  # stop the runs in flight now (second Ctrl-C, SIGTERM)
        self.peak_busy = 0  # most runs in flight at once
        self.peak_cands = 0  # most distinct candidates with runs in flight at once
        self._outputs_at = time.monotonic()
        # bind() may have restored kept changes and pointed base_code at the branch the agent starts from
        self.base = self._base(0, list(loop.kept_overrides), loop.base_code, loop.base_code_rev)
        self.history.append(self.base)  # decision 0 (the baseline) does not change it
        window = self.store.get_meta("window")  # kept across resumes: the proposal order depends on it
        lookahead = self.s.lookahead or len(self.slots)
        if window is None:
            window = str(len(self.slots) + lookahead)
            self.store.set_meta("window", window)
        self.feed = Feed(loop.proposer, int(window), lookahead, self.s.max_experiments, self._base_at, self._known,
                         self._key_of, loop.log, lambda: loop.base_code_rev)

    # -- bases and identities
    def _base(self, idx: int, overrides: list[str], code: Path | None, rev: str) -> Base:
        h, key = self.loop.ident(overrides, rev)
        return Base(idx, tuple(overrides), code, rev, key, h, to_dict(self.loop.config(overrides, 0)))

    def _base_at(self, idx: int) -> Base:
        return self.history[min(idx, len(self.history) - 1)]

    def _key_of(self, base: Base, prop: Any) -> str:
        rev = prop.code_rev if prop.code is not None else base.code_rev
        return self.loop.ident(merge_overrides(list(base.overrides), prop.overrides), rev)[1]

    def _known(self, upto: int, key: str) -> tuple[bool, float | None]:
        from golflab.auto.loop import run_key

        for d in list(self.loop.decisions):
            if d.idx <= upto and d.cfg_hash and run_key(d.cfg_hash, d.code_rev) == key:
                return True, d.mean
        return False, None

    # -- the main loop
    def run(self) -> str:
        self.pool.stop_orphans()  # a killed search's children
        base = Candidate(0, None, self.base, self.base.overrides, self.base.key, self.base.cfg_hash, self.base.code,
                         self.base.code_rev, True)
        self._start_flow(base, baseline_flow(self.base, self.loop.seeds[: self.s.seeds_min]))
        self.cands[0] = base
        self.loop.running = True
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
                time.sleep(self.loop.poll_s)
        finally:
            self.loop.running = False
            self.pool.stop_all()
            self.budget.save(force=True)
            self.feed.stop()
            if not self.feed.thread.is_alive():
                self.feed.flush()
            self.loop.write_outputs()
            for sig, handler in prev.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        """Ctrl-C: start nothing new and let the runs in flight finish; a second one, or SIGTERM, stops them."""
        if signum == signal.SIGTERM or self.interrupts:
            self.hard = True
        self.interrupts += 1

    def _drain(self, why: str) -> None:
        if not self.draining:
            self.draining = why
            self.loop.log(f"stopping: {why}; letting {len(self.active)} run(s) in flight finish")
            self.feed.pause()

    def _tick(self) -> str | None:
        if self.hard:
            return "interrupted: runs in flight were stopped; rerun the same command to resume"
        if self.interrupts:
            self._drain("interrupted (Ctrl-C again stops the runs in flight); rerun the same command to resume")
        self.pool.reap()
        if not self.draining and (why := self.budget.time_reason()):
            self._drain(why)
        self._claim()
        self._advance()
        self._commit()
        self.budget.save()
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
            self.loop.write_outputs()
            self._outputs_at = time.monotonic()
        return None

    # -- candidates
    def _claim(self) -> None:
        while not self.draining and sum(not c.decided for c in self.cands.values()) < len(self.slots):
            ready = self.feed.take()
            if ready is None:
                return
            self.claimed = ready.idx
            self.cands[ready.idx] = self._make(ready, None)

    def _make(self, r: Ready, old: Candidate | None) -> Candidate:
        p, b = r.prop, self.base
        code, rev = (p.code, p.code_rev) if p.code is not None else (b.code, b.code_rev)
        overrides = merge_overrides(list(b.overrides), p.overrides)
        h, key = self.loop.ident(overrides, rev)
        c = Candidate(r.idx, p, b, tuple(overrides), key, h, code, rev,
                      old.prune_passed if old else p.fidelity >= 1.0)
        c.ready = r
        if p.rejected:
            c.outcome = Outcome("rejected", note=p.rejected)
        elif p.code is not None and r.code_rev != b.code_rev:
            c.outcome = Outcome("discard", note=f"stale: built on code {r.code_rev[:7] or 'installed'}, "
                                               f"but {b.code_rev[:7] or 'installed'} was kept meanwhile")
        elif key == b.key:
            c.outcome = Outcome("discard", note="same as the baseline")
        else:
            short = None
            if p.fidelity < 1.0:  # screened on the baseline it was proposed on: timing cannot change it
                sb = r.base
                s_code, s_rev = (p.code, p.code_rev) if p.code is not None else (sb.code, sb.code_rev)
                s_over = tuple(merge_overrides(list(sb.overrides), p.overrides))
                short = Req(self.loop.ident(s_over, s_rev, p.fidelity)[1], self.loop.seeds[0], s_over, p.fidelity,
                            s_code)
            self._start_flow(c, candidate_flow(c, self.s, self.loop.seeds, short))
        return c

    def _start_flow(self, c: Candidate, flow: Any) -> None:
        c.flow = flow
        self._send(c, None)

    def _send(self, c: Candidate, value: Any) -> None:
        try:
            c.waiting = c.flow.send(value)
        except StopIteration as stop:
            c.outcome, c.waiting = stop.value, None

    def _result(self, r: Req) -> RunRow | None:
        return self.store.get_run(r.key, r.seed)

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
                res = {r: self._result(r) for r in w}
                if any(v is None for v in res.values()):
                    break
                self._send(c, res)

    def _prune_answer(self, c: Candidate, w: Prune) -> bool:
        """Prune questions go to the proposer in idx order (its pruner compares with earlier candidates)."""
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
            if c.idx == 0 and o.status != "keep":
                raise GolflabError("the baseline run crashed; see the runs/ folder under the output directory")
            p = c.prop
            extra = {"code_rev": c.code_rev, "diff": p.diff, "description": p.description} if p else \
                {"code_rev": c.code_rev}
            cfg_hash = "" if o.status == "rejected" else c.cfg_hash
            name = p.name if p else "baseline"
            self.loop.decide(Decision(
                c.idx, name, list(p.overrides) if p else list(c.overrides), cfg_hash, o.status, o.values, o.mean,
                o.delta, o.p, o.note, o.peak_mem_gb, o.base_band, **extra, verdict=o.verdict,
                test_delta=o.test_delta, test_p=o.test_p, test_verdict=o.test_verdict, sd=o.sd,
                base_idx=c.base.idx))
            kept = c.idx > 0 and o.status == "keep"
            if kept:
                self.base = self._base(c.idx, list(c.overrides), c.code, c.code_rev)
                self.loop.kept_overrides = list(c.overrides)
                self.loop.base_code, self.loop.base_code_rev = c.code, c.code_rev
                self._rebase()
            if c.idx > 0:
                self.history.append(self.base)
            write_atomic(self.loop.out / "results.tsv", _tsv(self.loop.decisions))
            value = None if o.status in ("crash", "rejected") or o.note.startswith("stale") else o.mean
            self.feed.commit(c.idx, p, value, o.pruned, kept)
            self.next_commit += 1

    def _rebase(self) -> None:
        for idx, c in list(self.cands.items()):
            if c.outcome is not None and (c.outcome.status == "rejected" or c.outcome.pruned):
                continue
            if c.flow is not None:
                c.flow.close()
            self.cands[idx] = self._make(c.ready, c)
            self.loop.log(f"{c.prop.name}: re-based onto the new baseline (decision {self.base.idx})")

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

    def _launch(self) -> None:
        free = self.pool.free_slots()
        for r in self._wanted():
            if not free:
                break
            if (r.key, r.seed) in self.active or self._result(r) is not None or self.pool.adopt(r):
                continue
            self.pool.start(r, free.pop(0))
        self.peak_busy = max(self.peak_busy, len(self.active))
        owners = {i for a in self.active.values() for i, c in self.cands.items()
                  if i > 0 and isinstance(c.waiting, list) and a.req.key == c.key}
        self.peak_cands = max(self.peak_cands, len(owners))

    def _stop_unwanted(self) -> None:
        """Runs no candidate waits for any more (its candidate was re-based) are stopped, not stored."""
        wanted = {(r.key, r.seed) for r in self._wanted()}
        for k in list(self.active):
            if k not in wanted:
                self.pool.stop(k)


def _tsv(decisions: list[Decision]) -> bytes:
    from golflab.auto.outputs import results_tsv

    return results_tsv(decisions).encode()

