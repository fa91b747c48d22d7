"""Checks on `golflab train --out RUN_DIR` before any work: a run is never overwritten by accident, and
an unusable path is one clear error instead of a traceback after minutes of data loading."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from golflab.errors import GolflabError

# What a run leaves; a directory holding only its config.toml (as the lab prepares them) is still fresh.
RUN_FILES = ("result.json", "metrics.jsonl", "model.pt", "checkpoint.pt")
WRITTEN = (*RUN_FILES, "train.log", "checkpoint.pt.tmp")  # what --force clears (and model.*.glf)


def prepare_out_dir(out: Path, resume: bool, force: bool) -> None:
    """Refuse a path that is not a writable directory, or one holding a run unless --resume or --force;
    with --force, remove the old run's files (only those, never anything else in the directory)."""
    if resume and force:
        raise GolflabError("--resume and --force contradict each other: --resume continues the run in --out, "
                           "--force replaces it")
    if out.exists() and not out.is_dir():
        raise GolflabError(f"--out {out} is a file, not a directory; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GolflabError(f"cannot create the run directory {out}: {exc.strerror}") from None
    try:  # a probe, not os.access: root passes that on read-only file systems
        tempfile.TemporaryFile(dir=out).close()
    except OSError as exc:
        raise GolflabError(f"cannot write to the run directory {out}: {exc.strerror}") from None
    held = [name for name in RUN_FILES if (out / name).exists()]
    if not held:
        return
    if failed_before_training(out, held):  # a typo in --data, say: nothing to lose, so the rerun replaces it
        clear(out)
        return
    if resume:
        if not (out / "checkpoint.pt").exists():
            raise GolflabError(f"{out} has no checkpoint.pt to resume from (it holds {', '.join(held)}); "
                               "pass --force to start it over")
        return
    if not force:
        raise GolflabError(f"{out} already holds a run ({', '.join(held)}); pass --resume to continue it or "
                           "--force to overwrite it, or choose another --out")
    clear(out)


def failed_before_training(out: Path, held: list[str]) -> bool:
    """Only a result.json saying "failed" and an empty metrics.jsonl: the run died before its first step."""
    if not set(held) <= {"result.json", "metrics.jsonl"} or "result.json" not in held:
        return False
    metrics = out / "metrics.jsonl"
    if metrics.exists() and metrics.stat().st_size > 0:
        return False
    try:
        return json.loads((out / "result.json").read_text(encoding="utf-8")).get("status") == "failed"
    except (OSError, ValueError, AttributeError):
        return False


def clear(out: Path) -> None:
    """Remove an old run's files from `out` (only those)."""
    for path in [*(out / n for n in WRITTEN), *out.glob("model.*.glf")]:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise GolflabError(f"--force cannot remove {path}: {exc.strerror}") from None
