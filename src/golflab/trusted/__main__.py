"""`python -P -m golflab.trusted --run-dir RUN --code CODE [--nproc N] [--max-wall S]` (see trusted_run_cmd).

Exit status: 0 when result.json says ok, 3 when the run failed or was rejected (the reason is in it)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="golflab.trusted")
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--code", type=Path, required=True, help="the proposal's code: a clean export of its commit")
    ap.add_argument("--nproc", type=int, default=1)
    ap.add_argument("--max-wall", type=float, default=None, help="wall-clock limit of the trainer, seconds")
    a = ap.parse_args(argv)

    from golflab.trusted.harness import Harness

    def stop(signum, frame):  # the run is being stopped: the children go with it (Harness.run's finally)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    result = Harness(a.run_dir, a.code, sys.executable, a.nproc, a.max_wall).run()
    return 0 if result["status"] == "ok" else 3


if __name__ == "__main__":
    sys.exit(main())
