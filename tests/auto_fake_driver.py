"""Run `golflab auto` on the fake trainer (tests/lab_fake_trainer.py) in this process: the kill/resume test
starts it as a child it can SIGKILL. argv: out dir, space file, parallel, max experiments."""

from __future__ import annotations

import sys
from pathlib import Path

from golflab.auto.proposers import SpaceProposer
from golflab.auto.search import search_session
from golflab.auto.space import load_space
from golflab.engine.backend import Executor, make_slots
from golflab.engine.local import LocalBackend
from golflab.engine.session import Session, Settings

FAKE = [sys.executable, str(Path(__file__).resolve().parent / "lab_fake_trainer.py")]


def fake_session(out: Path, proposer, parallel: int = 2, timeout_s: float | None = None, **settings) -> Session:
    s = Settings(preset="tiny", data=str(out / "no-data"), budget="8steps", **settings)
    backend = LocalBackend(make_slots(None, parallel=parallel), out, Executor(launcher=FAKE), timeout_s)
    return search_session(s, proposer, out, backend, poll_s=0.02)


def main(argv: list[str]) -> int:
    out, space, parallel, n = Path(argv[0]), argv[1], int(argv[2]), int(argv[3])
    session = fake_session(out, SpaceProposer(load_space(space, "tiny"), seed=3, fidelity=0.5), parallel,
                           max_experiments=n, seeds_max=3)
    session.run()
    print(f"trained {session.counts[0]}; stopped: {session.stop_reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
