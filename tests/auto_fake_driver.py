"""Run `golflab auto` on the fake trainer (tests/lab_fake_trainer.py) in this process: the kill/resume test
starts it as a child it can SIGKILL. argv: out dir, space file, parallel, max experiments."""

from __future__ import annotations

import sys
from pathlib import Path

from golflab.auto.loop import AutoLoop, AutoSettings
from golflab.auto.proposers import SpaceProposer
from golflab.auto.space import load_space
from golflab.lab.executor import Executor, make_slots

FAKE = [sys.executable, str(Path(__file__).resolve().parent / "lab_fake_trainer.py")]


def fake_loop(out: Path, proposer, parallel: int = 2, **settings) -> AutoLoop:
    s = AutoSettings(preset="tiny", data=str(out / "no-data"), budget="8steps", **settings)
    return AutoLoop(s, proposer, out, executor=Executor(launcher=FAKE), slots=make_slots(None, parallel=parallel),
                    poll_s=0.02)


def main(argv: list[str]) -> int:
    out, space, parallel, n = Path(argv[0]), argv[1], int(argv[2]), int(argv[3])
    loop = fake_loop(out, SpaceProposer(load_space(space, "tiny"), seed=3, fidelity=0.5), parallel,
                     max_experiments=n, seeds_max=3)
    loop.run_loop()
    print(f"trained {loop.store.trained}; stopped: {loop.stop_reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
