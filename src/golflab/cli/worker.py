"""A persistent worker: one long-lived process per slot that runs `golflab train` jobs one after another in
the same interpreter, so that torch, golflab and (on a GPU) compiled graphs are loaded once per slot
instead of once per run. Each job runs the same code path as a fresh `python -m golflab train` (the CLI
entry point, in-process), with its stdout and stderr in the run's own log, so reuse never changes a
result (tests/test_engine_worker.py checks bit-identity on CPU).

Protocol: one JSON object a line on stdin, {"argv": [...], "run_dir": "...", "log": "..."}; one JSON line
back on the original stdout when the job ends, {"rc": int}. While a job runs, the worker's working
directory is its run directory: an engine restarted after a kill recognises a still-running job by it.
EOF on stdin ends the worker.
"""

from __future__ import annotations

import json
import os
import sys


def _run_job(argv: list[str], log: str) -> int:
    from golflab.cli import main

    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    saved = os.dup(1), os.dup(2)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.argv = ["golflab", *argv]
    try:
        main()
        rc = 0
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # the job failed in a way the CLI did not catch: report it, keep serving
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        rc = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
    return rc


def _release_memory() -> None:
    """Hand the finished job's GPU memory back to the driver: the next job may be a bigger model, and
    memory the caching allocator kept in blocks of the old one's sizes must not make it run out."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def main() -> int:
    reply = os.fdopen(os.dup(1), "w", buffering=1)  # the protocol's channel; fd 1 goes to each job's log
    import golflab.cli  # noqa: F401  (loaded once: torch, golflab and the config schema)

    home = os.getcwd()
    for line in sys.stdin:
        job = json.loads(line)
        os.chdir(job["run_dir"])
        try:
            rc = _run_job(job["argv"], job["log"])
        finally:
            os.chdir(home)
            _release_memory()
        reply.write(json.dumps({"rc": rc}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
