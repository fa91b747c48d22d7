"""Budgets of a search: wall-clock hours (summed over resumed sessions), GPU-hours of finished runs, and
the number of experiments. Elapsed time is persisted in the store, so a resumed search continues the
clock where the killed one left it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from golflab.engine.store import Store

ELAPSED_KEY = "elapsed_s"


@dataclass
class Budget:
    store: Store
    hours: float | None = None
    gpu_hours: float | None = None
    max_experiments: int | None = None

    def __post_init__(self) -> None:
        self.before = float(self.store.get_meta(ELAPSED_KEY) or 0.0)  # earlier sessions
        self.start = time.monotonic()
        self._saved = 0.0

    def elapsed_s(self) -> float:
        return self.before + time.monotonic() - self.start

    def save(self, force: bool = False) -> None:
        """Persist the elapsed time (at most every few seconds unless forced)."""
        now = time.monotonic()
        if force or now - self._saved > 2.0:
            self.store.set_meta(ELAPSED_KEY, f"{self.elapsed_s():.3f}")
            self._saved = now

    def time_reason(self) -> str | None:
        """Why no new run may start (None: the time and GPU budgets allow it)."""
        if self.hours is not None and self.elapsed_s() >= self.hours * 3600:
            return f"--hours budget reached ({self.elapsed_s() / 3600:.3g} h of {self.hours:g} h)"
        if self.gpu_hours is not None:
            used = self.store.gpu_seconds() / 3600
            if used >= self.gpu_hours:
                return f"--gpu-hours budget reached ({used:.3g} GPU-h of {self.gpu_hours:g})"
        return None

    def experiments_left(self, claimed: int) -> bool:
        return self.max_experiments is None or claimed < self.max_experiments
