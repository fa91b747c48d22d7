"""The run directory's files: metrics.jsonl, train.log, result.json (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import json
import math
import subprocess
import time
from pathlib import Path
from typing import Any

from golflab.fileio import write_atomic


def write_json_atomic(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def _jsonable(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    return str(x)


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinities as null: JSON has no such numbers."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}


class RunLog:
    """Writes only on the main rank; other ranks get a silent instance. A tracker (an experiment
    tracker's listener) gets each metric record and the result too."""

    def __init__(self, out_dir: Path | None, tracker: Any = None):
        self.out_dir = out_dir
        self.tracker = tracker
        self.t0 = time.time()
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            self._metrics = open(out_dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
            self._log = open(out_dir / "train.log", "a", encoding="utf-8")  # noqa: SIM115

    def info(self, msg: str) -> None:
        if self.out_dir is None:
            return
        line = f"[{time.time() - self.t0:8.1f}s] {msg}"
        print(line, file=self._log, flush=True)
        print(line, flush=True)

    def metric(self, kind: str, **values: Any) -> None:
        if self.out_dir is None:
            return
        rec = {"kind": kind, **_clean(values)}
        print(json.dumps(rec), file=self._metrics, flush=True)
        if self.tracker is not None:
            self.tracker.metric(rec)

    def result(self, result: dict[str, Any]) -> None:
        if self.out_dir is not None:
            clean = _clean(result)
            write_json_atomic(self.out_dir / "result.json", clean)
            if self.tracker is not None:
                self.tracker.result(clean)

    def close(self) -> None:
        if self.out_dir is not None:
            self._metrics.close()
            self._log.close()


EXPORT_MARK = ".golflab-export.json"  # at the top of a clean export of a commit (golflab.auto.worktree.export)


def code_version(where: Path | None = None) -> tuple[str | None, bool | None]:
    """(git SHA, dirty flag) of the git checkout at `where` (default: golflab's own source tree), or of
    the commit a clean export holds (never dirty), or (None, None) outside both."""
    src = where or Path(__file__).resolve().parent
    for top in (src, *src.parents)[:4]:
        try:
            return str(json.loads((top / EXPORT_MARK).read_text(encoding="utf-8"))["commit"]), False
        except (OSError, ValueError, KeyError, TypeError):
            continue
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip() != ""
        return sha, dirty
    except (OSError, subprocess.SubprocessError):
        return None, None


def driver_version() -> str | None:
    """The NVIDIA driver version from nvidia-smi, or None where it cannot be asked."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return out.strip().splitlines()[0].strip() or None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None
