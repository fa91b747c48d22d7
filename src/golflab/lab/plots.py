"""PNG plots of a lab (matplotlib, Agg): the metric per arm, and val_bpb against training time."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from golflab.engine.store import Store
from golflab.lab.plan import BASELINE, Plan
from golflab.lab.summary import ArmSummary
from golflab.stats import mean_ci

COLORS = {"win": "#2a9d4a", "loss": "#d1495b", "inconclusive": "#8d8d8d", BASELINE: "#2f6db5"}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _color(a: ArmSummary) -> str:
    if a.name == BASELINE:
        return COLORS[BASELINE]
    return COLORS.get(a.decision.verdict if a.decision else "", "#e09f3e")


def save_png(fig, path: Path, dpi: int = 130) -> Path:
    """Write the figure under a temporary name, then rename: a reader never sees half a PNG."""
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def metric_plot(plan: Plan, arms: list[ArmSummary], path: Path) -> Path:
    """Left: each seed's value, the mean with its 95% t-interval, the baseline mean dashed.
    Right: the per-seed differences from the reference arm (what the paired test judges) with their
    mean and 95% interval; below zero is better."""
    plt = pyplot()
    shown = [a for a in arms if a.values]
    by_name = {a.name: a for a in arms}
    diffs = []
    for a in shown:
        ref = by_name.get(a.ref) if a.ref else None
        shared = sorted(set(a.values) & set(ref.values)) if ref else []
        if len(shared) >= 1:
            diffs.append((a, [a.values[s] - ref.values[s] for s in shared]))
    width = max(5.0, 1.3 * len(shown) + 2) + (max(3.5, 1.2 * len(diffs) + 1.5) if diffs else 0)
    ncols = 2 if diffs else 1
    fig, axes = plt.subplots(1, ncols, figsize=(width, 4.4), squeeze=False,
                             gridspec_kw={"width_ratios": [len(shown) + 1, len(diffs) + 1][:ncols]})
    ax = axes[0, 0]
    rng = np.random.default_rng(0)
    base = next((a for a in shown if a.name == BASELINE), None)
    if base is not None:
        ax.axhline(base.mean, color=COLORS[BASELINE], ls="--", lw=1, alpha=0.7, label="baseline mean")
    for i, a in enumerate(shown):
        _dots_and_ci(ax, i, list(a.values.values()), _color(a), rng)
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels(["\n".join(x for x in (a.name, a.verdict, f"(n={len(a.values)})") if x) for a in shown],
                       fontsize=8)
    ax.set_ylabel(f"{plan.metric} (lower is better)")
    ax.set_title(f"{plan.metric} per arm (dots: seeds; bar: mean ± 95% CI)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.set_xlim(-0.5, len(shown) - 0.3)
    if base is not None:
        ax.legend(fontsize=8, loc="best")
    if diffs:
        ax = axes[0, 1]
        ax.axhline(0.0, color="black", lw=1, alpha=0.6)
        for i, (a, d) in enumerate(diffs):
            _dots_and_ci(ax, i, d, _color(a), rng)
        ax.set_xticks(range(len(diffs)))
        ax.set_xticklabels([f"{a.name}\n− {a.ref}\n(pairs={len(d)})" for a, d in diffs], fontsize=8)
        ax.set_ylabel(f"Δ {plan.metric} on the same seed")
        ax.set_title("paired differences (below 0 = better)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.set_xlim(-0.5, len(diffs) - 0.3)
    fig.suptitle(plan.name, fontsize=10)
    fig.tight_layout()
    path = save_png(fig, path)
    plt.close(fig)
    return path


def _dots_and_ci(ax, x: float, vals: list[float], color: str, rng: np.random.Generator) -> None:
    ax.scatter(x + rng.uniform(-0.12, 0.12, len(vals)), vals, s=22, color=color, alpha=0.55, zorder=2)
    m, lo, hi = mean_ci(vals)
    ax.errorbar(x + 0.28, m, yerr=[[m - lo], [hi - m]], fmt="o", color=color, ms=7, capsize=5, lw=2, zorder=3)


def curves_plot(plan: Plan, store: Store, arms: list[ArmSummary], path: Path) -> Path | None:
    """val_bpb against elapsed training seconds: every seed faint, the arm's mean curve bold. Runs with
    fewer than two val points (short budgets, val_every beyond the last step) show train loss instead,
    under a name that says so ("val_bpb" in the file name becomes "train_loss")."""
    train_path = path.with_name(path.name.replace("val_bpb", "train_loss"))
    for kind, key, target, other in (("val", "val_bpb", path, train_path), ("train", "loss", train_path, path)):
        out = _curves(plan, store, arms, target, kind, key)
        if out is not None:
            if other != target:
                other.unlink(missing_ok=True)  # a stale plot of the other kind would contradict this one
            return out
    return None


def _curves(plan: Plan, store: Store, arms: list[ArmSummary], path: Path, kind: str, key: str) -> Path | None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    palette = plt.get_cmap("tab10")
    drawn = False
    for i, a in enumerate(x for x in arms if x.runs):
        curves = []
        for r in a.runs:
            if not r.ok:
                continue
            pts = [(m["elapsed_s"], m[key]) for m in store.metrics(r.key, r.seed, kind)
                   if isinstance(m.get("elapsed_s"), (int, float)) and isinstance(m.get(key), (int, float))]
            if len(pts) >= 2:
                curves.append(np.array(sorted(pts)))
        if not curves:
            continue
        color = COLORS[BASELINE] if a.name == BASELINE else palette(i % 10)
        for c in curves:
            ax.plot(c[:, 0], c[:, 1], color=color, alpha=0.2, lw=1)
        lo, hi = max(c[0, 0] for c in curves), min(c[-1, 0] for c in curves)
        if hi > lo:
            grid = np.linspace(lo, hi, 100)
            mean = np.mean([np.interp(grid, c[:, 0], c[:, 1]) for c in curves], axis=0)
            ax.plot(grid, mean, color=color, lw=2, label=f"{a.name} (n={len(curves)})")
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("training time (s)")
    ax.margins(x=0)  # the axis spans the data, no further
    ys = np.concatenate([line.get_ydata() for line in ax.get_lines()])
    if kind == "val":
        label, title = "val_bpb", "val_bpb during training"
    else:
        label, title = "train loss (nats/token)", "train loss during training (too few val evals for val_bpb)"
        if ys.min() > 0 and ys.max() > 2 * ys.min():  # the first steps' loss dwarfs the rest: log shows both
            from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            label += ", log scale"
    ax.set_ylabel(label)
    ax.set_title(f"{plan.name}: {title}\n(faint: seeds, bold: mean over the time all seeds cover)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = save_png(fig, path)
    plt.close(fig)
    return path
