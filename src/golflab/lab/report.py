"""`lab report`: report.md (speedrun-style table, value lists, decisions, noise floor) and PNG plots."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

from golflab.fileio import write_atomic
from golflab.lab.plan import BASELINE, Plan
from golflab.lab.store import Store
from golflab.lab.summary import ArmSummary, needed_lines, noise_floor


def fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    if math.isnan(x):
        return "NaN"
    return f"{x:.{digits}f}"


def table_text(plan: Plan, arms: list[ArmSummary]) -> str:
    """The modded-nanogpt PR table: Runs, μ, σ, +/- (Δ vs its reference), p, then paired p and verdict."""
    m = plan.metric
    width = max(len(a.name) for a in arms) + 2
    head = (f"{'':<{width}}{'Runs':>5} {m + ' μ':>14} {m + ' σ':>14} {m + ' +/-':>14} {'p':>7} "
            f"{'paired p':>9} {'perm p':>7}  {'vs':<10} verdict")
    lines = [head]
    for a in arms:
        c = a.comparison
        base = a.name == BASELINE
        delta = c.delta if c else (0.0 if base else None)
        ps = [c.p_welch, c.p_paired, c.p_perm] if c else [math.nan if base else None] * 3
        lines.append(
            f"{a.name:<{width}}{len(a.values):>5} {fmt(a.mean):>14} {fmt(a.sd):>14} {fmt(delta):>14} "
            f"{fmt(ps[0]):>7} {fmt(ps[1]):>9} {fmt(ps[2]):>7}  {a.ref or '':<10} {a.verdict}")
    return "\n".join(lines)


def value_lists(plan: Plan, arms: list[ArmSummary]) -> str:
    blocks = []
    for a in arms:
        if not a.runs:
            continue
        seeds = sorted(a.values)
        vals = ", ".join(f"{a.values[s]:.4f}" for s in seeds)
        lines = [f"{a.name}:", f"  {plan.metric} = [{vals}]", f"  seeds = {seeds}", f"  (n = {len(seeds)})"]
        bad = [r for r in a.runs if r.status in ("failed", "timeout", "crashed")]
        for r in bad:
            first = (r.error or "").strip().splitlines()[:1]
            lines.append(f"  seed {r.seed}: {r.status}" + (f" ({first[0][:100]})" if first else ""))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def decision_lines(arms: list[ArmSummary]) -> list[str]:
    out = []
    for a in arms:
        d = a.decision
        if d is None:
            if a.name != BASELINE:
                out.append(f"- **{a.name}**: {a.state}" + (f" ({a.reason})" if a.reason else ""))
            continue
        v = d.stats.get("val", {})
        test = "paired t" if v.get("test") == "paired" else "Welch t"
        p = v.get("p_paired") if v.get("test") == "paired" else v.get("p_welch")
        delta = v.get("delta_paired") if v.get("test") == "paired" else v.get("delta")
        line = (f"- **{a.name}**: {d.verdict} vs {d.stats.get('ref')} ({test}, p = {fmt(p)}, Δ = {fmt(delta)}, "
                f"{d.stats.get('n_seeds')} seeds)")
        if "test" in d.stats:
            t = d.stats["test"]
            tp = t.get("p_paired") if t.get("test") == "paired" else t.get("p_welch")
            line += f"; test split: {t.get('verdict')} (p = {fmt(tp)}, Δ = {fmt(t.get('delta'))}), {d.stats.get('note')}"
        if d.promoted:
            line += "; **promoted**: later arms build on it and are compared with it"
        when = dt.datetime.fromtimestamp(d.decided_at, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        out.append(f"{line} — {when}")
    return out


def report_markdown(plan: Plan, store: Store, arms: list[ArmSummary], plots: list[str]) -> str:
    r = plan.rule
    runs = [x for a in arms for x in a.runs]
    shas = sorted({f"{x.code_sha[:10]}{'+dirty' if x.code_dirty else ''}" for x in runs if x.code_sha})
    parts = [
        f"# Lab report: {plan.name}", "",
        f"Plan `{plan.path}` (digest {store.get_meta('plan_digest')}), store `{store.path}`.  ",
        f"Preset `{plan.preset}`, budget {plan.budget or 'preset default'}, metric **{plan.metric}**"
        + (f" (target val loss {plan.target})" if plan.target else "") + " (lower is better).  ",
        f"Rule: alpha = {r.alpha}, min_effect = {r.min_effect}, {'one' if r.one_sided else 'two'}-sided, "
        f"confirm on test = {str(r.confirm_on_test).lower()}.  ",
        f"Runs: {len(runs)} ({sum(x.status == 'ok' for x in runs)} ok); code {', '.join(shas) or 'unknown'}.", "",
        "## Results", "",
        "Δ (+/-) is the arm's mean minus the mean of the arm it is compared with (`vs`) on the same seeds; "
        "p is Welch's t-test, paired p the paired t-test on per-seed differences, perm p the exact sign-flip "
        "permutation test. The verdict uses the paired test where the arms share at least 2 seeds.", "",
        "```", table_text(plan, arms), "", value_lists(plan, arms), "```", "",
        "## Decisions and promotions", "", *(decision_lines(arms) or ["(none yet)"]), "",
        "## Noise floor and seeds needed", "",
    ]
    floor = noise_floor(arms)
    parts.append(f"- Noise floor: the baseline's σ across seeds is {fmt(floor)} {plan.metric}"
                 + ("" if floor is not None else " (needs 2 ok baseline runs)") + ".")
    for a in arms:
        parts += [f"- {line}" for line in needed_lines(plan, a)]
    parts += ["", "Seeds needed use the normal approximation n = ((z_α + z_0.8) / d)² · var, with var = σ_arm² + "
              "σ_ref² (Welch) or σ_diff² (paired), z_α one- or two-sided as the rule says.", ""]
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
