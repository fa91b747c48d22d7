"""Proposals generated ahead, in a background thread, while runs train.

Every call into the proposer (propose, should_prune, observe, kept) is made from this one thread, so a
proposer needs no locking, and in an order that depends only on decisions, never on timing: proposal k is
asked once decision k - W is committed (W = the window, stored with the search), right after `observe`
was called for exactly the decisions 1 .. k - W, with the baseline as it stood after decision k - W. That
is what makes a seeded proposer (Optuna TPE) propose the same candidates when a killed search replays its
stored runs. `should_prune` questions come in idx order from the engine and are answered first; `kept`
is passed on as soon as a keep is committed (an agent proposer advances its branch).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from golflab.engine.proposal import Proposal, Proposer

if TYPE_CHECKING:
    from golflab.engine.flow import Base

MAX_REPEATS = 20  # proposals in a row that repeat a tried config before the space counts as exhausted


@dataclass
class Ready:
    idx: int
    prop: Proposal
    base: Base  # the baseline it was proposed on: its short-run screening uses it
    code_rev: str = ""  # the kept code (loop.base_code_rev) when it was proposed: a code change is built on it


class Feed:
    def __init__(self, proposer: Proposer, window: int, lookahead: int, limit: int | None,
                 base_at: Callable[[int], Base], known: Callable[[int, str], tuple[bool, float | None]],
                 key_of: Callable[[Base, Proposal], str], log: Callable[[str], None],
                 live_rev: Callable[[], str] = lambda: ""):
        self.proposer, self.window, self.lookahead, self.limit = proposer, window, lookahead, limit
        self.base_at, self.known, self.key_of, self.log = base_at, known, key_of, log
        self.live_rev = live_rev
        self.cv = threading.Condition()
        self.ready: deque[Ready] = deque()
        self.next_idx = 1
        self.committed = 0  # decisions 0 .. committed are final
        self.tells: dict[int, tuple[Proposal | None, float | None, bool]] = {}
        self.told = 0
        self.urgent: deque[tuple[str, Any, Future | None]] = deque()  # ("prune", (prop, v)) / ("kept", prop)
        self.paused = False  # the engine wants no more proposals (budget reached)
        self.exhausted = False
        self.stopping = False
        self.error: BaseException | None = None
        self.asking = False
        self.tried: set[str] = set()
        self.thread = threading.Thread(target=self._main, name="golflab-auto-proposer", daemon=True)

    # -- engine side
    def start(self) -> None:
        self.thread.start()

    def take(self) -> Ready | None:
        with self.cv:
            if self.error is not None:
                raise self.error
            item = self.ready.popleft() if self.ready else None
            self.cv.notify_all()
            return item

    def done(self) -> bool:
        """Nothing more will come: exhausted or at the limit, with nothing left to take."""
        with self.cv:
            if self.error is not None:
                raise self.error
            at_limit = self.limit is not None and self.next_idx > self.limit
            return (self.exhausted or at_limit) and not self.ready and not self.asking

    def commit(self, idx: int, prop: Proposal | None, value: float | None, pruned: bool, kept: bool) -> None:
        with self.cv:
            self.committed = idx
            if idx > 0:
                self.tells[idx] = (prop, value, pruned)
            if kept and prop is not None and hasattr(self.proposer, "kept"):
                self.urgent.append(("kept", prop, None))
            self.cv.notify_all()

    def ask_prune(self, prop: Proposal, value: float) -> Future:
        fut: Future = Future()
        with self.cv:
            self.urgent.append(("prune", (prop, value), fut))
            self.cv.notify_all()
        return fut

    def pause(self) -> None:
        with self.cv:
            self.paused = True
            self.cv.notify_all()

    def stop(self) -> None:
        with self.cv:
            self.stopping = True
            self.cv.notify_all()
        self.thread.join(timeout=5.0)

    def flush(self) -> None:
        """At the end: observe the decisions not yet told (the thread is stopped or idle)."""
        with self.cv:
            todo = sorted(i for i in self.tells if i > self.told)
        for i in todo:
            self._tell(i)

    # -- the thread
    def _can_ask(self) -> bool:
        return (not self.paused and not self.exhausted and len(self.ready) < self.lookahead
                and (self.limit is None or self.next_idx <= self.limit)
                and self.committed >= self.next_idx - self.window)

    def _main(self) -> None:
        try:
            while True:
                with self.cv:
                    while not self.stopping and not self.urgent and not self._can_ask():
                        self.cv.wait(0.5)
                    if self.stopping:
                        return
                    op = self.urgent.popleft() if self.urgent else None
                    if op is None:
                        self.asking = True
                if op is not None:
                    self._urgent(*op)
                    continue
                try:
                    self._ask()
                finally:
                    with self.cv:
                        self.asking = False
                        self.cv.notify_all()
        except BaseException as exc:  # surfaced by the engine's next take()
            with self.cv:
                self.error = exc
                self.exhausted = True

    def _urgent(self, kind: str, arg: Any, fut: Future | None) -> None:
        if kind == "kept":
            self.proposer.kept(arg)
            return
        try:
            fut.set_result(bool(self.proposer.should_prune(*arg)))
        except BaseException as exc:
            fut.set_exception(exc)

    def _tell(self, i: int) -> None:
        prop, value, pruned = self.tells[i]
        if prop is not None:
            self.proposer.observe(prop, value, pruned)
        self.told = i

    def _ask(self) -> None:
        k = self.next_idx
        upto = max(0, k - self.window)
        for i in range(self.told + 1, upto + 1):
            self._tell(i)
        base = self.base_at(upto)
        repeats = 0
        while True:
            live_rev = self.live_rev()
            prop = self.proposer.propose(base.config)
            if prop is None:
                with self.cv:
                    self.exhausted = True
                return
            if prop.rejected:
                break
            key = self.key_of(base, prop)
            if key not in self.tried and key != base.key:
                self.tried.add(key)
                break
            repeats += 1  # a config already tried: tell the proposer what is known, ask again
            known, value = self.known(upto, key)
            self.proposer.observe(prop, value if known else None, False)
            if repeats >= MAX_REPEATS:
                self.log("the space looks exhausted: every proposal repeats a tried config")
                with self.cv:
                    self.exhausted = True
                return
        with self.cv:
            self.ready.append(Ready(k, prop, base, live_rev))
            self.next_idx = k + 1
            self.cv.notify_all()
