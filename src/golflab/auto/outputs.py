"""What `golflab auto` leaves behind: an autoresearch-compatible results.tsv, progress.png, report.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from golflab.engine.session import Decision, Settings
from golflab.fileio import write_atomic
from golflab.lab.plots import pyplot, save_png
from golflab.lab.report import fmt

# autoresearch's program.md: five tab-separated columns, statuses keep / discard / crash; golflab's extra
# information follows in columns after the five
TSV_HEADER = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\tgolflab_status\texperiment\tp\tnote"
TSV_STATUS = {"keep": "keep", "discard": "discard", "crash": "crash", "rejected": "discard", "skipped": "discard"}


def results_tsv(decisions: list[Decision], installed_commit: str = "") -> str:
    """One row per experiment; commit = the git commit the run's code came from (a code proposal's commit,
    else the installed golflab's), short as autoresearch writes it."""
    rows = [TSV_HEADER]
    for d in decisions:
        o = d.outcome
        value = f"{o.mean:.6f}" if o.mean is not None else "0.000000"
        mem = f"{o.peak_mem_gb:.1f}" if o.peak_mem_gb is not None else "0.0"
        desc = " ".join([d.description, *d.overrides]).strip() if d.idx else "baseline " + " ".join(d.overrides)
        commit = (d.code_rev or installed_commit or "unknown")[:7]
        p = f"{o.p:.4g}" if o.p is not None else ""
        rows.append("\t".join([commit, value, mem, TSV_STATUS.get(o.status, o.status), " ".join(desc.split()) or "-",
                               o.status, d.name, p, " ".join(o.note.split())]))
    return "\n".join(rows) + "\n"


def progress_png(decisions: list[Decision], path: Path, metric: str) -> None:
    if not decisions:
        return
    fig = progress_figure(decisions, metric)
    save_png(fig, path, dpi=110)
    pyplot().close(fig)


def progress_figure(decisions: list[Decision], metric: str) -> Any:
    """Running best against experiment number, every run's value, and the kept baseline's noise band."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = pyplot().subplots(figsize=(8, 4.5))
    colors = {"keep": "tab:green", "discard": "tab:gray", "crash": "tab:red", "rejected": "tab:orange",
              "skipped": "tab:gray"}
    # a pruned candidate's value is from a short run, far above the full runs: it would squash the axis,
    # so the axis spans the full-budget runs and pruned ones sit on its top edge
    full = [v for d in decisions if d.mean is not None and not d.outcome.pruned for v in (d.mean, *d.outcome.values.values())]
    top = None
    if full and any(d.outcome.pruned for d in decisions):
        pad = 0.08 * (max(full) - min(full) or abs(max(full)) or 1.0)
        top = max(full) + pad
        ax.set_ylim(min(full) - pad, top + pad)
    best_x, best_y = [], []
    for d in decisions:
        if d.mean is None:
            continue
        if d.outcome.pruned and top is not None:
            ax.scatter(d.idx, top, s=36, color=colors.get(d.status, "tab:gray"), marker="^", label="pruned (short run, off scale)")
            continue
        for v in d.outcome.values.values():
            ax.scatter(d.idx, v, s=8, color=colors.get(d.status, "tab:gray"), alpha=0.35)
        ax.scatter(d.idx, d.mean, s=36, color=colors.get(d.status, "tab:gray"), label=d.status, zorder=3,
                   marker="x" if d.outcome.pruned else "o")
        if d.status == "keep":
            best_x.append(d.idx)
            best_y.append(d.mean)
    if best_x:  # the running best: the kept baseline's mean, a step function over experiments
        last = decisions[-1].idx
        ax.step([*best_x, last], [*best_y, best_y[-1]], where="post", color="tab:green", label="kept baseline")
    xs = [d.idx for d in decisions if d.outcome.base_band]
    if xs:
        lo = [d.outcome.base_band[0] for d in decisions if d.outcome.base_band]
        hi = [d.outcome.base_band[1] for d in decisions if d.outcome.base_band]
        ax.fill_between(xs, lo, hi, step="mid", color="tab:green", alpha=0.12, label="baseline mean ± 2σ")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=False))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8)
    ax.set_xlabel("experiment")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"{metric} (lower is better)")
    ax.set_title("golflab auto: kept only on a significant paired win")
    fig.tight_layout()
    return fig


def test_column(d: Decision) -> str:
    """The confirmation of a judged experiment: the replication on fresh seeds, or the test split's verdict."""
    o = d.outcome
    if o.rep_verdict:
        return f"{o.rep_verdict} on fresh seeds (p = {fmt(o.rep_p)} at level {o.rep_level:.3g})"
    if not o.test_verdict:
        return "-"
    return f"{o.test_verdict} (p = {fmt(o.test_p)}, Δ = {fmt(o.test_delta)})"


def report_markdown(decisions: list[Decision], metric: str, settings: Settings | None = None,
                    out: Path | None = None) -> str:
    """The speedrun-style table of every experiment and the noise band of the baseline."""
    rows = []
    for d in decisions:
        verdict = d.status + (f" ({d.note})" if d.note and d.note != d.status else "")
        desc = " ".join([d.description, *d.overrides]).strip() or "-"
        rows.append(f"| {d.idx} | {d.name} | {desc} | {len(d.outcome.values)} | {fmt(d.mean)} | {fmt(d.outcome.sd)} "
                    f"| {fmt(d.delta)} | {fmt(d.p)} | {verdict} | {test_column(d)} |")
    base = decisions[0] if decisions else None
    kept = [d for d in decisions if d.status == "keep"]
    lines = ["# golflab auto report", ""]
    if settings is not None:
        s = settings
        r = s.rule
        lines += [f"Preset `{s.preset}`, budget {s.budget}, metric **{metric}** (lower is better). Screening: "
                  f"{r.test} test on shared seeds, H0: improvement <= {r.min_effect}, alpha {r.alpha}, seeds "
                  f"{s.seeds_min}..{s.seeds_max} with {r.spending} alpha spending. A screening win is kept only "
                  f"if it wins again on fresh seeds: {'on' if s.replicate else 'off'}; the test split of the same "
                  f"runs: {'on' if s.confirm else 'off'}.", ""]
        if s.replicate:
            tested = [d for d in decisions if d.outcome.rep_level is not None]
            spent = sum(d.outcome.rep_level or 0.0 for d in tested)
            lines += [f"Error budget over the search: P(keeping any no-effect change) <= {r.alpha}; "
                      f"{len(tested)} replication(s) spent {spent:.4g} of it (each experiment k is replicated at "
                      "its share of alpha; docs/verdicts.md).", ""]
    lines += ["Δ is the experiment's mean minus its baseline's on the same seeds (paired); p is the one-sided paired "
              "t-test on val; test is the same test on the test-split scores of the same runs.", "",
              f"| # | experiment | change | runs | {metric} μ | σ | Δ | p | verdict | test |",
              "|---|---|---|---|---|---|---|---|---|---|", *rows, ""]
    if base is not None and base.mean is not None:
        band = base.outcome.base_band
        lines.append(f"- Noise band of the starting baseline: mean {fmt(base.mean)}, σ {fmt(base.outcome.sd)}"
                     + (f", mean ± 2σ = [{fmt(band[0])}, {fmt(band[1])}]" if band else "") + ".")
    if kept:
        best = kept[-1]
        lines.append(f"- Best (the kept baseline now): experiment {best.idx} `{best.name}`, {metric} {fmt(best.mean)}"
                     + (f" ({fmt(best.mean - base.mean)} vs the start)" if base and base.mean is not None
                        and best.mean is not None else "") + ".")
    counts: dict[str, int] = {}
    for d in decisions[1:]:
        counts[d.status] = counts.get(d.status, 0) + 1
    lines += [f"- Experiments: {len(decisions) - 1} ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}).",
              ""]
    lines += review_lines(decisions, out)
    lines += ["![progress](progress.png)", ""]
    return "\n".join(lines)


def review_lines(decisions: list[Decision], out: Path | None) -> list[str]:
    """What a person checks before trusting a keep: each code proposal's diff (stat, and the full diff's
    path), data smuggled into code, and results far better than every earlier run."""
    from golflab.auto import review

    recs = [d.to_record() for d in decisions]
    lines: list[str] = []
    flagged = review.flags(recs)
    if flagged:
        lines += ["## Implausible results (check before trusting them)", "",
                  *[f"- **{name}**: {why}" for name, why in flagged.items()], ""]
    if out is not None:
        rows = review.code_changes(recs, out)
        if rows:
            lines += ["## Code proposals", "", "| experiment | status | commit | change | diff | note |",
                      "|---|---|---|---|---|---|"]
            for r in rows:
                rel = Path(r["diff_path"]).relative_to(out) if Path(r["diff_path"]).is_relative_to(out) else r["diff_path"]
                lines.append(f"| {r['name']} | {r['status']} | {str(r['code_rev'])[:7]} | {r['diff_stat'] or '-'} | "
                             f"[{rel}]({rel}) | {r['data_note'] or r['description']} |")
            lines.append("")
    return lines


def write_outputs(decisions: list[Decision], out: Path, metric: str, settings: Settings | None = None,
                  installed_commit: str = "") -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "results.tsv", results_tsv(decisions, installed_commit).encode())
    progress_png(decisions, out / "progress.png", metric)
    write_atomic(out / "report.md", report_markdown(decisions, metric, settings, out).encode())
