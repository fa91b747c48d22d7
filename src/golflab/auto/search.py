"""`golflab auto` as a session of the one engine: its store (OUT/auto.sqlite), run directories (OUT/runs)
and outputs (results.tsv, progress.png, report.md in OUT)."""

from __future__ import annotations

from pathlib import Path

from golflab.engine.backend import Backend
from golflab.engine.proposal import Proposer
from golflab.engine.session import Decision, Log, Session, Settings


def search_session(settings: Settings, proposer: Proposer, out: Path, backend: Backend, log: Log | None = None,
                   poll_s: float = 0.1) -> Session:
    """The engine session of a search: its store is out/auto.sqlite, its outputs results.tsv, progress.png
    and report.md in `out`."""
    from golflab.auto.outputs import write_outputs
    from golflab.train.runlog import code_version
    from golflab.trusted import trusted_run_cmd

    installed = code_version()[0] or ""
    ex = getattr(backend, "executor", None)
    if ex is not None and ex.code_runner is None:  # code proposals are measured by the trusted harness
        ex.code_runner = trusted_run_cmd

    def outputs(decisions: list[Decision], session: Session) -> None:
        write_outputs(decisions, out, settings.metric, settings, installed)

    return Session(settings, proposer, out / "auto.sqlite", out, backend, log, poll_s, outputs, kind="auto")
