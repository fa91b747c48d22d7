"""What a person reviewing a search needs to see of each code proposal: its diff (stat and a file with
the full diff, which `git apply` reproduces on the base commit) and whether its result is plausible.

Pure functions over decisions (golflab.engine.session.Decision or the store's dict records), for the
report: `code_changes(decisions, out)` and `implausible(value, earlier)` / `flags(decisions)`.
"""

from __future__ import annotations

import re
from pathlib import Path
from statistics import median
from typing import Any

from golflab.auto.brief import diff_stat
from golflab.fileio import write_atomic

DIFF_DIR = "diffs"
K_SIGMA = 5.0  # a result this many robust σ below the best so far is flagged
MIN_EARLIER = 3  # runs needed before the σ rule applies
LARGE_DIFF = 100_000  # bytes of added lines: code rarely needs this much; data (a table of val tokens) does


def _get(d: Any, key: str) -> Any:
    return d.get(key) if isinstance(d, dict) else getattr(d, key, None)


def diff_path(out: Path, name: str, code_rev: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{name}-{code_rev[:12]}")
    return Path(out) / DIFF_DIR / f"{safe}.diff"


def code_changes(decisions: list[Any], out: Path) -> list[dict[str, Any]]:
    """One row per code proposal: name, status, code_rev, description, diff_stat, diff_path (the full
    diff written to <out>/diffs/<name>-<commit>.diff, rewritten only when it changed) and data_note (not
    empty when the change adds binary files or many bytes: data smuggled into code, e.g. val tokens)."""
    rows = []
    for d in decisions:
        diff, rev = _get(d, "diff") or "", _get(d, "code_rev") or ""
        if not diff:
            continue
        path = diff_path(out, str(_get(d, "name")), rev)
        if not path.is_file() or path.read_text(encoding="utf-8") != diff:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, diff)
        rows.append({"name": _get(d, "name"), "status": _get(d, "status"), "code_rev": rev,
                     "description": _get(d, "description") or "", "diff_stat": diff_stat(diff), "diff_path": path,
                     "data_note": data_note(diff)})
    return rows


def data_note(diff: str) -> str:
    """Why a diff looks like it carries data rather than code ("" if it does not)."""
    added = sum(len(ln) - 1 for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++"))
    notes = ["adds binary files"] if "GIT binary patch" in diff or "\nBinary files " in diff else []
    notes += [f"adds {added:,} bytes"] if added > LARGE_DIFF else []
    return "; ".join(notes)


def robust_sigma(values: list[float]) -> float:
    """1.4826 x the median absolute deviation: σ of the bulk of the runs, unmoved by a few outliers."""
    m = median(values)
    return 1.4826 * median(abs(v - m) for v in values)


def implausible(value: float, earlier: list[float], k: float = K_SIGMA, floor: float | None = None,
                lower_is_better: bool = True) -> str:
    """Why `value` is implausible given the earlier runs' values ("" if it is not): under `floor`, or more
    than k robust σ better than the best earlier run (σ of the earlier runs; at least 1e-3 of their median,
    so that identical earlier runs do not flag every improvement)."""
    if floor is not None and (value < floor if lower_is_better else value > floor):
        return f"{value:.4g} is beyond the plausible floor {floor:.4g}"
    if len(earlier) < MIN_EARLIER:
        return ""
    sigma = max(robust_sigma(earlier), 1e-3 * abs(median(earlier)))
    best = min(earlier) if lower_is_better else max(earlier)
    gap = (best - value) if lower_is_better else (value - best)
    if gap > k * sigma:
        return f"{value:.4g} is {gap / sigma:.1f} robust σ better than the best earlier run ({best:.4g}, σ {sigma:.3g})"
    return ""


def flags(decisions: list[Any], k: float = K_SIGMA, floor: float | None = None) -> dict[str, str]:
    """{decision name: reason} for each decision whose mean is implausible given every run before it."""
    out, earlier = {}, []
    for d in decisions:
        mean, values = _get(d, "mean"), _get(d, "values") or {}
        if mean is not None:
            reason = implausible(float(mean), earlier, k, floor)
            if reason:
                out[str(_get(d, "name"))] = reason
        if not _get(d, "pruned"):  # a pruned candidate's value is from a short run
            earlier += [float(v) for v in values.values() if v is not None]
    return out
