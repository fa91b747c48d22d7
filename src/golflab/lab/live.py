"""Live terminal progress of a running lab (rich): done / running / queued, best arm, ETA."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from golflab.lab.runner import LabProgress


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def render(p: LabProgress) -> Group:
    head = Text.assemble(
        ("done ", "bold"), str(p.done), ("  running ", "bold"), str(len(p.active)), ("  queued ", "bold"),
        str(p.queued), ("  best ", "bold"), f"{p.best[0]} ({p.best[1]:.4f})" if p.best else "-",
        ("  ETA ", "bold"), _eta(p.eta_s), " (mean run time x remaining runs / slots)")
    table = Table(show_header=True, header_style="dim", box=None)
    for col in ("arm", "state", "seeds", "note"):
        table.add_column(col)
    for a in p.view.arms.values():
        table.add_row(a.name, a.state, str(a.n_seeds), a.reason)
    running = Text("running: " + ", ".join(f"{x.run_dir.parent.name}/{x.run_dir.name} on {x.slot.label}"
                                             f" ({time.time() - x.started:.0f}s)" for x in p.active), style="dim")
    return Group(head, table, running)


@contextlib.contextmanager
def live_progress(console: Console) -> Iterator[Callable[[LabProgress], None]]:
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        last = [0.0]

        def update(p: LabProgress) -> None:
            if time.time() - last[0] > 0.5:
                live.update(render(p))
                last[0] = time.time()

        yield update
