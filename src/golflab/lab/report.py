"""`lab report`: report.md (speedrun-style table, value lists, decisions, noise floor) and PNG plots."""

from __future__ import annotations

import math
from pathlib import Path

from golflab.engine.store import FAILED, Store
from golflab.fileio import write_atomic
from golflab.lab.plan import BASELINE, Plan
from golflab.lab.summary import ArmSummary, needed_lines, noise_floor, time_line, time_use


def fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    if math.isnan(x):
        return "NaN"
    return f"{x:.{digits}f}"


def table_text(plan: Plan, arms: list[ArmSummary]) -> str:
    """The modded-nanogpt PR table: Runs, μ, σ, +/- (Δ vs its reference), p, on the seeds the verdict used;
    p is the deciding test's (named in `test`), shown with the boundary it had to reach."""
    m = plan.metric
    width = max(len(a.name) for a in arms) + 2
    head = (f"{'':<{width}}{'Runs':>5} {m + ' μ':>14} {m + ' σ':>14} {m + ' +/-':>14} {'p':>8} {'bound':>8} "
            f"{'test':>12}  {'vs':<10} verdict")
    lines = [head]
    for a in arms:
        c = a.comparison
        delta = c.delta if c else (0.0 if a.name == BASELINE else None)
        lines.append(
            f"{a.name:<{width}}{len(a.values):>5} {fmt(a.mean):>14} {fmt(a.sd):>14} {fmt(delta):>14} "
            f"{fmt(c.p if c else None):>8} {fmt(c.boundary if c else None):>8} {(c.test if c else '-'):>12}  "
            f"{a.ref or '':<10} {a.verdict}")
    return "\n".join(lines)


def speedrun_text(plan: Plan, arms: list[ArmSummary]) -> str | None:
    """For a loss target (metric time_to_target, or a target rule on a loss): the NanoGPT speedrun's own
    table, Runs, Time μ σ +/- p, Loss μ σ +/- p, then the raw lists. Time is the seconds to the target
    (inf: never reached it, kept) for time_to_target, else the training seconds; Loss is the final val_loss."""
    from golflab.stats import format_speedrun_table, speedrun_table

    target = plan.target
    if target is None:
        return None
    time_key = "time_to_target" if plan.metric == "time_to_target" else "train_seconds"
    lists: dict[str, tuple[list[float], list[float]]] = {}
    for a in arms:
        ok = sorted((r for r in a.runs if r.ok and r.values.get("val_loss") is not None), key=lambda r: r.seed)
        times = [float(r.values.get(time_key) or math.nan) for r in ok]
        if len(ok) >= 2:
            lists[a.name] = (times, [float(r.values["val_loss"]) for r in ok])
    if BASELINE not in lists:
        return None
    bt, bl = lists[BASELINE]
    rows = {name: speedrun_table(t, lo, target, None if name == BASELINE else bt, None if name == BASELINE else bl)
            for name, (t, lo) in lists.items()}
    raw = [f"{name}:\n  times = {t}\n  losses = {lo}" for name, (t, lo) in lists.items()]
    return format_speedrun_table(rows) + "\n\n" + "\n".join(raw)


def value_lists(plan: Plan, arms: list[ArmSummary]) -> str:
    blocks = []
    for a in arms:
        if not a.runs:
            continue
        seeds = sorted(a.values)
        vals = ", ".join(f"{a.values[s]:.4f}" for s in seeds)
        lines = [f"{a.name}:", f"  {plan.metric} = [{vals}]", f"  seeds = {seeds}", f"  (n = {len(seeds)})"]
        for r in a.runs:
            if r.status in FAILED:
                first = (r.error or "").strip().splitlines()[:1]
                lines.append(f"  seed {r.seed}: {r.status}" + (f" ({first[0][:100]})" if first else ""))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def decision_lines(arms: list[ArmSummary]) -> list[str]:
    out = []
    for a in arms:
        d = a.decision
        if a.name == BASELINE:
            continue
        if d is None:
            out.append(f"- **{a.name}**: {a.state}" + (f" ({a.reason})" if a.reason else ""))
            continue
        o = d.outcome
        if o.status == "skipped":
            out.append(f"- **{a.name}**: skipped ({o.note})")
            continue
        line = f"- **{a.name}**: {o.verdict or o.status} vs {d.ref} ({o.test or 'no test'}, p = {fmt(o.p)}, " \
               f"Δ = {fmt(o.delta)}, {o.n_seeds} seeds): {o.note}"
        if o.test_verdict:
            line += f"; test split: {o.test_verdict} (p = {fmt(o.test_p)}, Δ = {fmt(o.test_delta)})"
        if d.kept:
            line += "; **promoted**: later arms build on it and are compared with it"
        out.append(line)
    return out


def report_markdown(plan: Plan, store: Store, arms: list[ArmSummary], plots: list[str]) -> str:
    r = plan.rule
    runs = [x for a in arms for x in a.runs]
    shas = sorted({f"{str(x.values['git_sha'])[:10]}{'+dirty' if x.values.get('git_dirty') else ''}" for x in runs
                   if x.values.get("git_sha")})
    parts = [
        f"# Lab report: {plan.name}", "",
        f"Plan `{plan.path}` (digest {store.get_meta('plan_digest')}), store `{store.path}`.  ",
        f"Preset `{plan.preset}`, budget {plan.budget or 'preset default'}, metric **{plan.metric}**"
        + (f" (target val loss {plan.target})" if plan.target else "") + " (lower is better).  ",
        f"Rule: alpha = {r.alpha}, H0: improvement <= min_effect = {r.min_effect}, "
        f"{'one' if r.one_sided else 'two'}-sided, test {r.test}, alpha spending {r.spending}, seeds "
        f"{plan.baseline_seeds.min}..{plan.baseline_seeds.max}"
        + (f", target {r.target}" if r.target is not None else "")
        + f", confirm on test = {str(plan.confirm_on_test).lower()}.  ",
        f"Runs: {len(runs)} ({sum(x.status == 'ok' for x in runs)} ok); code {', '.join(shas) or 'unknown'}.", "",
        "## Results", "",
        "μ, σ and Δ (+/-) are on the seeds the verdict used: Δ is the arm's mean minus the mean of the arm it "
        "is compared with (`vs`); p is the deciding test's (`test`: paired t on per-seed differences where the "
        "arms share seeds, Welch t otherwise; docs/verdicts.md) at the look that decided, and `bound` the "
        "alpha-spending boundary it had to reach. Verdicts: win / loss / inconclusive / failed, each with why "
        "under Decisions.", "",
        "```", table_text(plan, arms), "", value_lists(plan, arms), "```", "",
        *(["## The speedrun's table", "", f"p: one-sided one-sample t test that the mean val_loss is below "
           f"{plan.target}; Time p: paired t test that the times are lower than the baseline's.", "", "```",
           sr, "```", ""] if (sr := speedrun_text(plan, arms)) else []),
        "## Decisions and promotions", "", *(decision_lines(arms) or ["(none yet)"]), "",
    ]
    parts += ["## Where the time went", "", f"- {time_line(time_use(store))}.", ""]
    over = [(a.name, r) for a in arms for r in a.runs if r.ok and r.wall_s and not r.adopted]
    if over:
        parts += ["| run | wall s | train s | eval s | outside s |", "|---|---:|---:|---:|---:|"]
        for name, r in over:
            tr, ev = float(r.values.get("train_seconds") or 0), float(r.values.get("eval_seconds") or 0)
            parts.append(f"| {name} seed {r.seed} | {r.wall_s:.1f} | {tr:.1f} | {ev:.1f} | {r.wall_s - tr - ev:.1f} |")
        parts.append("")
    parts += ["## Noise floor and seeds needed", ""]
    floor = noise_floor(arms)
    parts.append(f"- Noise floor: the baseline's σ across seeds is {fmt(floor)} {plan.metric}"
                 + ("" if floor is not None else " (needs 2 ok baseline runs)") + ".")
    for a in arms:
        parts += [f"- {line}" for line in needed_lines(plan, a)]
    parts += ["", "Seeds needed use the normal approximation n = ((z_α + z_0.8) / d)² · var, with var = σ_arm² + "
              "σ_ref² (Welch) or σ_diff² (paired), z_α one- or two-sided as the rule says.", ""]
    if plan.vary:
        parts.insert(6, f"This plan compares harness settings on purpose: {', '.join(plan.vary)}.  ")
    if plots:
        parts += ["## Plots", "", *[f"![{Path(p).stem}]({Path(p).name})" for p in plots], ""]
    return "\n".join(parts)


def write_report(plan: Plan, store: Store, arms: list[ArmSummary], out_dir: Path) -> list[Path]:
    """Write report.md and the plots into out_dir; return the paths written."""
    from golflab.lab.plots import curves_plot, metric_plot

    out_dir.mkdir(parents=True, exist_ok=True)
    plots = [metric_plot(plan, arms, out_dir / "metric_by_arm.png")]
    curve = curves_plot(plan, store, arms, out_dir / "val_bpb_vs_time.png")
    if curve:
        plots.append(curve)
    md = out_dir / "report.md"
    write_atomic(md, report_markdown(plan, store, arms, [str(p) for p in plots]))
    return [md, *plots]
