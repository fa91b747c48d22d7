"""Live terminal progress of a running session (rich): experiments in flight, runs in flight, counts."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from golflab.engine.scheduler import Progress


def render(p: Progress) -> Group:
    head = Text.assemble(("decided ", "bold"), str(p.decided), ("  runs stored ", "bold"), str(p.stored_runs),
                         ("  in flight ", "bold"), f"{len(p.running)}/{p.slots}",
                         (f"  stopping: {p.draining}" if p.draining else "", "yellow"))
    table = Table(show_header=True, header_style="dim", box=None)
    for col in ("#", "experiment", "against", "waiting for"):
        table.add_column(col, overflow="fold")
    for c in sorted(p.candidates, key=lambda c: c.idx):
        w = c.waiting
        what = "a prune answer" if w is not None and not isinstance(w, list) else \
            f"{len(w)} run(s)" if isinstance(w, list) else (c.outcome.status if c.outcome else "")
        table.add_row(str(c.idx), c.name, c.base.name if c.idx else "", what)
    running = Text("running: " + ", ".join(s.label for s in p.running), style="dim")
    return Group(head, table, running)


@contextlib.contextmanager
def live_progress(console: Console) -> Iterator[Callable[[Progress], None]]:
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        last = [0.0]

        def update(p: Progress) -> None:
            if time.time() - last[0] > 0.5:
                live.update(render(p))
                last[0] = time.time()

        yield update
