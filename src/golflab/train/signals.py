"""Stopping a run cleanly on SIGINT / SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any


class StopOnSignal:
    """SIGINT / SIGTERM ask the trainer to stop after the current step (it checkpoints and reports
    "interrupted"); one that comes while the trainer is being built stops it before its first step. A
    second signal more than 2 s later aborts at once; closer ones (Ctrl-C reaching torchrun and its
    workers, which torchrun then signals again) count as one."""

    def __init__(self, announce: bool):
        self.announce, self.signum, self.first, self.old = announce, 0, 0.0, {}
        self.request_stop: Callable[[int], None] | None = None  # the trainer's, once it is built

    def attach(self, request_stop: Callable[[int], None]) -> None:
        self.request_stop = request_stop
        if self.signum:
            request_stop(self.signum)

    def handle(self, signum: int, frame: Any) -> None:
        if self.first and time.monotonic() - self.first > 2.0:
            raise KeyboardInterrupt
        if not self.first and self.announce:  # os.write: print() is not safe inside a signal handler
            os.write(2, b"stopping after this step to save a checkpoint (press Ctrl-C again to abort)\n")
        self.first = self.first or time.monotonic()
        self.signum = self.signum or signum
        if self.request_stop is not None:
            self.request_stop(self.signum)

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            self.old = {s: signal.signal(s, self.handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def uninstall(self) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)
        self.old = {}
