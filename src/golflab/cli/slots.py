"""Where a session's runs go, as `lab run` and `auto` take it from the command line: GPU ids, persistent
workers, the tracker every run mirrors itself to."""

from __future__ import annotations

from golflab.engine.backend import Slot
from golflab.errors import GolflabError


def parse_gpus(text: str | None) -> list[int] | None:
    if text is None or text == "auto":
        try:
            import torch

            n = torch.cuda.device_count()
        except Exception:  # no torch / no driver: CPU slots
            n = 0
        return list(range(n)) or None
    if text in ("", "none", "cpu"):
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise GolflabError(f"--gpus {text!r}: expected e.g. 0,1,2,3, auto or cpu") from None


def track_env(track: str | None) -> dict[str, str]:
    """The environment that makes every run mirror itself to a tracker (golflab.track reads it)."""
    if track is None:
        return {}
    from golflab.track import check_tracker

    check_tracker(track)
    return {"GOLFLAB_TRACK": track}


def use_workers(flag: bool | None, slots: list[Slot]) -> bool:
    """Persistent workers by default on CPU slots; on GPUs only when asked (not yet measured there)."""
    return flag if flag is not None else not any(s.gpus for s in slots)
