"""Files the harness runs that a proposal's processes must not change: Python's start-up hooks (every
.pth, sitecustomize and usercustomize in the site directories) and the trusted golflab package itself.
They are fingerprinted before the proposal's code starts and compared after it ends, so a run that
plants code for the harness to import (now or in a later run) is rejected. Out of scope: changes to
other installed packages (torch, numpy) and forged bytecode caches (a determined adversary)."""

from __future__ import annotations

import site
from pathlib import Path

import golflab
from golflab.errors import GolflabError

HOOKS = ("sitecustomize", "usercustomize")


class IntegrityError(GolflabError):
    """A proposal's process changed code that the harness runs."""


def watched() -> list[Path]:
    files: list[Path] = []
    for d in [*site.getsitepackages(), site.getusersitepackages()]:
        p = Path(d)
        if p.is_dir():
            files += [f for f in p.iterdir() if f.suffix == ".pth" or f.stem in HOOKS]
    files += Path(golflab.__file__).resolve().parent.rglob("*.py")
    return files


def fingerprint() -> dict[str, tuple[int, int]]:
    """{path: (size, mtime_ns)} of the watched files."""
    out = {}
    for f in watched():
        try:
            st = f.stat()
        except OSError:
            continue
        out[str(f)] = (st.st_size, st.st_mtime_ns)
    return out


def check_unchanged(before: dict[str, tuple[int, int]]) -> None:
    after = fingerprint()
    changed = sorted(set(before.items()) ^ set(after.items()))
    if changed:
        paths = sorted({p for p, _ in changed})
        raise IntegrityError(f"the proposal's processes changed files the harness runs: {', '.join(paths[:3])}")
