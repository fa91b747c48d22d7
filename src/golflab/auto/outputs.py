"""What `golflab auto` leaves behind: an autoresearch-compatible results.tsv and progress.png."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from golflab.fileio import write_atomic

TSV_HEADER = "commit\tval_bpb\tmemory_gb\tstatus\tdescription"


def results_tsv(decisions: list[Any]) -> str:
    """One row per experiment; commit = the config hash's first 7 characters, as autoresearch's short SHA."""
    rows = [TSV_HEADER]
    for d in decisions:
        value = f"{d.mean:.6f}" if d.mean is not None else "0.000000"
        mem = f"{d.peak_mem_gb:.1f}" if d.peak_mem_gb is not None else "0.0"
        desc = " ".join(d.overrides) if d.name != "baseline" else "baseline " + " ".join(d.overrides)
        if getattr(d, "description", ""):
            desc = f"{d.description} {desc}"
        if d.note and d.note not in ("baseline", "win", "loss", "inconclusive"):
            desc += f" ({d.note})"
        commit = (getattr(d, "code_rev", "") or d.cfg_hash or "-------")[:7]  # code commit, else config hash
        rows.append("\t".join([commit, value, mem, d.status, " ".join(desc.split())]))
    return "\n".join(rows) + "\n"


def progress_png(decisions: list[Any], path: Path, metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = {"keep": "tab:green", "discard": "tab:gray", "crash": "tab:red", "rejected": "tab:orange"}
    best_x, best_y = [], []
    for d in decisions:
        if d.mean is None:
            continue
        for v in d.values.values():
            ax.scatter(d.idx, v, s=8, color=colors[d.status], alpha=0.35)
        ax.scatter(d.idx, d.mean, s=36, color=colors[d.status], label=d.status, zorder=3,
                   marker="x" if d.note.startswith("pruned") else "o")
        if d.status == "keep":
            best_x.append(d.idx)
            best_y.append(d.mean)
    if best_x:  # the running best: the kept baseline's mean, a step function over experiments
        last = decisions[-1].idx
        ax.step([*best_x, last], [*best_y, best_y[-1]], where="post", color="tab:green", label="kept baseline")
    xs = [d.idx for d in decisions if d.base_band]
    if xs:
        lo = [d.base_band[0] for d in decisions if d.base_band]
        hi = [d.base_band[1] for d in decisions if d.base_band]
        ax.fill_between(xs, lo, hi, step="mid", color="tab:green", alpha=0.12, label="baseline mean ± 2σ")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=False))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8)
    ax.set_xlabel("experiment")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"{metric} (lower is better)")
    ax.set_title("golflab auto: kept only on a significant paired win")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def write_outputs(decisions: list[Any], out: Path, metric: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "results.tsv", results_tsv(decisions).encode())
    progress_png(decisions, out / "progress.png", metric)
