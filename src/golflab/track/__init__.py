"""Mirror a run to an experiment tracker: `golflab train --track wandb|mlflow|trackio`.

Each backend is an optional extra (`pip install 'golflab[wandb]'`), imported only when asked for. A
tracker gets the resolved config once, every metrics.jsonl record as it is written, and result.json at
the end; the run directory stays the record of truth, so a tracker that fails mid-run only warns.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from golflab.errors import GolflabError

TRACKERS = {"wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio"}  # --track NAME -> module to import


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: trackers want flat keys."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def metric_values(rec: dict[str, Any]) -> tuple[int, dict[str, float]]:
    """A metrics.jsonl record -> (step, {"train/loss": ...}) with numbers only, names by kind."""
    kind = rec.get("kind", "metric")
    values = {f"{kind}/{k}": float(v) for k, v in rec.items()
              if k not in ("kind", "step", "final") and isinstance(v, (int, float)) and not isinstance(v, bool)}
    return int(rec.get("step", 0)), values


def result_values(result: dict[str, Any]) -> dict[str, float]:
    """result.json's numbers, flattened (artifact.val_bpb, splits.test.val_bpb, ...)."""
    return {k: float(v) for k, v in flatten(result).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class SafeTracker:
    """Forwards to a backend; the first error turns it off with one warning instead of ending the run."""

    def __init__(self, backend: Any, name: str):
        self.backend, self.name, self.failed = backend, name, False

    def _call(self, method: str, arg: dict[str, Any]) -> None:
        if self.failed:
            return
        try:
            getattr(self.backend, method)(arg)
        except Exception as exc:
            self.failed = True
            print(f"warning: --track {self.name} stopped mirroring this run: {type(exc).__name__}: {exc}",
                  file=sys.stderr, flush=True)

    def metric(self, rec: dict[str, Any]) -> None:
        self._call("metric", rec)

    def result(self, result: dict[str, Any]) -> None:
        self._call("result", result)


def check_tracker(kind: str) -> Any:
    """The tracker's module; GolflabError (one line: what to install) if the name or package is missing."""
    if kind not in TRACKERS:
        raise GolflabError(f"--track {kind!r} is not a tracker; use one of {', '.join(TRACKERS)}")
    try:
        return importlib.import_module(TRACKERS[kind])
    except ImportError:
        raise GolflabError(f"--track {kind} needs the {TRACKERS[kind]} package: "
                           f"pip install 'golflab[{kind}]'") from None


def open_tracker(kind: str, *, project: str, name: str, config: dict[str, Any], run_dir: Path) -> SafeTracker:
    """Start a run in tracker `kind` with the resolved config; GolflabError if the name or package is missing."""
    module = check_tracker(kind)
    from golflab.track import backends

    try:
        backend = backends.BACKENDS[kind](module, project=project, name=name, config=config, run_dir=run_dir)
    except Exception as exc:  # no login, a bad tracking URI, ...: the tracker's own words, on one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise GolflabError(f"--track {kind} could not start a run: {type(exc).__name__}: {first}") from None
    return SafeTracker(backend, kind)
