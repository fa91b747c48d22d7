"""`golflab auto`: an autonomous search that keeps a change only on a significant paired win."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from golflab.errors import ConfigError

console = Console()


def auto(
    data: Path = typer.Option(..., "--data", help="Prepared dataset directory."),
    space: Path | None = typer.Option(None, "--space", help="Search space TOML (see spaces/)."),
    plan: Path | None = typer.Option(None, "--plan", help="Lab plan TOML: propose its arms in priority order."),
    agent_cmd: str | None = typer.Option(None, "--agent-cmd", help="Coding-agent command run in a fresh git "
                                         "worktree with $GOLFLAB_BRIEF (see docs/auto.md)."),
    agent_timeout: float = typer.Option(600.0, "--agent-timeout", help="Seconds one agent answer may take."),
    agent_check: str | None = typer.Option(None, "--agent-check", help="Extra check command run in the "
                                           "worktree of a code change, e.g. 'pytest -q tests/test_model.py'."),
    tag: str | None = typer.Option(None, "--tag", help="Agent branch golflab/auto/<tag> (default: the --out "
                                   "folder's name)."),
    preset: str | None = typer.Option(None, "--preset", help="Preset the baseline starts from (default: the "
                                      "plan's, else tiny)."),
    budget: str | None = typer.Option(None, "--budget", help="Budget of one full run: 30s, 10m, 200steps "
                                      "(default: the plan's, else 30s)."),
    set_: list[str] = typer.Option([], "--set", help="Baseline override key=value (repeatable)."),
    max_experiments: int = typer.Option(12, "--max-experiments", help="Stop after this many experiments."),
    hours: float | None = typer.Option(None, "--hours", help="Stop starting experiments after this long."),
    seeds_min: int = typer.Option(2, "--seeds-min", help="Seeds every candidate gets."),
    seeds_max: int = typer.Option(4, "--seeds-max", help="Most seeds while the verdict is open."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the paired one-sided test."),
    min_effect: float = typer.Option(0.0, "--min-effect", help="Smallest improvement worth keeping."),
    fidelity: float = typer.Option(0.25, "--fidelity",
                                   help="Short-run budget fraction for pruning (space only); 1 disables."),
    seed: int = typer.Option(0, "--seed", help="Seed of the proposer (TPE sampler)."),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default: auto.out)."),
    quiet: bool = typer.Option(False, "--quiet", help="No per-run log lines."),
) -> None:
    """Propose changes, run each on shared seeds, keep only significant improvements."""
    from golflab.auto.loop import AutoLoop, AutoSettings
    from golflab.auto.proposers import PlanProposer, SpaceProposer
    from golflab.auto.space import load_space

    if sum(x is not None for x in (space, plan, agent_cmd)) != 1:
        raise ConfigError("golflab auto: give exactly one of --space, --plan or --agent-cmd")
    if not 1 <= seeds_min <= seeds_max:
        raise ConfigError(f"--seeds-min ({seeds_min}) must be >= 1 and <= --seeds-max ({seeds_max})")
    if not 0 < fidelity <= 1:
        raise ConfigError(f"--fidelity {fidelity} must be in (0, 1]")
    base = list(set_)
    if plan is not None:
        proposer = PlanProposer(plan, preset=preset, data=data)
        base = [*proposer.plan.baseline, *base]
        preset, budget = proposer.plan.preset, budget or proposer.plan.budget
    elif space is not None:
        preset = preset or "tiny"
        proposer = SpaceProposer(load_space(space, preset), seed=seed, fidelity=fidelity)
    out_dir = out or Path("auto.out")
    log = None if quiet else (lambda m: console.print(m, markup=False))
    if agent_cmd is not None:
        preset = preset or "tiny"
        proposer = _agent(agent_cmd, agent_timeout, agent_check, tag or _tag(out_dir), log)
    budget = budget or "30s"
    settings = AutoSettings(preset=preset, data=str(data), budget=budget, base_overrides=base, seeds_min=seeds_min,
                            seeds_max=seeds_max, alpha=alpha, min_effect=min_effect,
                            max_experiments=max_experiments, hours=hours)
    loop = AutoLoop(settings, proposer, out_dir, log=log)
    try:
        decisions = loop.run_loop()
    finally:
        if hasattr(proposer, "cleanup"):
            proposer.cleanup(keep_base=False)
    table = Table(title=f"golflab auto: {out_dir}")
    for col in ("#", "experiment", "change", "mean", "Δ", "p", "verdict"):
        table.add_column(col)
    for d in decisions:
        change = " ".join([d.description] * bool(d.description) + d.overrides)
        table.add_row(str(d.idx), d.name, change, _f(d.mean), _f(d.delta), _f(d.p),
                      f"{d.status} ({d.note})" if d.note else d.status)
    console.print(table)
    console.print(f"trained {loop.store.trained} runs this time; {loop.store.run_count()} stored; "
                  f"results: {out_dir / 'results.tsv'}, {out_dir / 'progress.png'}")


def _agent(cmd: str, timeout: float, check: str | None, tag: str, log):
    """The agent proposer on the git repository of the current directory, which must be a committed
    golflab checkout: the agent starts from its HEAD, and the baseline runs that code."""
    from golflab.auto import worktree as wt
    from golflab.auto.agent import AgentProposer

    repo = wt.repo_root(Path.cwd())
    if not (repo / "src" / "golflab" / "__init__.py").is_file():
        raise ConfigError(f"--agent-cmd: {repo} is not a golflab checkout (no src/golflab/); run it from one")
    dirty = wt.dirty_tracked(repo, "src/")
    if dirty:
        raise ConfigError(f"--agent-cmd: {repo} has uncommitted changes under src/ ({', '.join(dirty[:3])}); "
                          "commit or stash them, the agent starts from a committed state")
    return AgentProposer(cmd, repo, tag, timeout_s=timeout, check_cmd=check, log=log)


def _tag(out: Path) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", out.resolve().name).strip(".-") or "auto"


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("auto")(auto)
