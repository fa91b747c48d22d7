"""`golflab auto`: an autonomous search that keeps a change only on a significant, confirmed paired win."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from golflab.cli.slots import BackendOpt, RayAddressOpt
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
    hours: float | None = typer.Option(None, "--hours", help="Wall-clock budget of the search (all sessions)."),
    gpu_hours: float | None = typer.Option(None, "--gpu-hours", help="GPU-hour budget (finished runs' wall time "
                                           "x GPUs of their slot)."),
    seeds_min: int | None = typer.Option(None, "--seeds-min", help="Seeds every candidate gets (default: the "
                                         "plan's, else 2)."),
    seeds_max: int | None = typer.Option(None, "--seeds-max", help="Most seeds while the verdict is open "
                                         "(default: the plan's, else 4)."),
    alpha: float | None = typer.Option(None, "--alpha", help="Error rate: of each screening, and of keeping any "
                                       "no-effect change over the whole search (default: the plan's, else 0.05)."),
    min_effect: float | None = typer.Option(None, "--min-effect", help="Smallest improvement worth keeping."),
    fidelity: float = typer.Option(0.25, "--fidelity",
                                   help="Short-run budget fraction for pruning (space only); 1 disables."),
    no_confirm: bool = typer.Option(False, "--no-confirm", help="Keep screening wins without replicating them on "
                                    "fresh seeds (then the search-wide false-keep rate is not controlled)."),
    gpus: str | None = typer.Option(None, "--gpus", help="GPU ids, e.g. 0,1,2,3; 'auto' (default) or 'cpu'."),
    procs_per_run: int = typer.Option(1, "--procs-per-run", help="GPUs per run (torchrun when > 1)."),
    parallel: int = typer.Option(1, "--parallel", help="Concurrent runs without GPUs."),
    lookahead: int | None = typer.Option(None, "--lookahead", help="Proposals kept ready (default: slots)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the proposer (TPE sampler)."),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default: auto.out)."),
    quiet: bool = typer.Option(False, "--quiet", help="No per-run log lines."),
    workers: bool | None = typer.Option(None, "--workers/--no-workers", help="A persistent worker per slot "
                                        "(torch and compiled graphs loaded once; default on)."),
    track: str | None = typer.Option(None, "--track", help="Mirror every run to wandb, mlflow or trackio."),
    backend_kind: BackendOpt = "local",
    ray_address: RayAddressOpt = None,
) -> None:
    """Propose changes, run each on shared seeds, keep only significant improvements confirmed on test."""
    from golflab.auto.outputs import test_column
    from golflab.auto.proposers import SpaceProposer
    from golflab.auto.search import search_session
    from golflab.auto.space import load_space
    from golflab.cli.slots import make_backend, track_env
    from golflab.engine.backend import Executor
    from golflab.engine.session import Settings, short
    from golflab.lab.source import PlanProposer
    from golflab.stats.rules import Rule

    if sum(x is not None for x in (space, plan, agent_cmd)) != 1:
        raise ConfigError("golflab auto: give exactly one of --space, --plan or --agent-cmd")
    if lookahead is not None and lookahead < 1:
        raise ConfigError(f"--lookahead {lookahead} must be >= 1")
    if not 0 < fidelity <= 1:
        raise ConfigError(f"--fidelity {fidelity} must be in (0, 1]")
    base = list(set_)
    rule, seeds = Rule(), (2, 4)
    confirm_test = False
    if plan is not None:
        proposer = PlanProposer(plan, preset=preset, data=data)
        pl = proposer.plan
        base = [*pl.baseline, *base]
        preset, budget = pl.preset, budget or pl.budget
        rule, seeds, confirm_test = pl.rule, (pl.baseline_seeds.min, pl.baseline_seeds.max), pl.confirm_on_test
    elif space is not None:
        preset = preset or "tiny"
        proposer = SpaceProposer(load_space(space, preset), seed=seed, fidelity=fidelity)
    out_dir = out or Path("auto.out")
    log = None if quiet else (lambda m: console.print(m, markup=False))
    if agent_cmd is not None:
        preset = preset or "tiny"
        proposer = _agent(agent_cmd, agent_timeout, agent_check, tag or _tag(out_dir), log)
    try:
        rule = dataclasses.replace(rule, **{k: v for k, v in (("alpha", alpha), ("min_effect", min_effect))
                                            if v is not None})
    except ValueError as exc:
        raise ConfigError(f"--alpha/--min-effect: {exc}") from None
    seeds_min = seeds[0] if seeds_min is None else seeds_min
    seeds_max = max(seeds_min, seeds[1]) if seeds_max is None else seeds_max
    if not 1 <= seeds_min <= seeds_max:
        raise ConfigError(f"--seeds-min ({seeds_min}) must be >= 1 and <= --seeds-max ({seeds_max})")
    settings = Settings(preset=preset, data=str(data), budget=budget or "30s", base_overrides=base,
                        seeds_min=seeds_min, seeds_max=seeds_max, rule=rule, max_experiments=max_experiments,
                        hours=hours, gpu_hours=gpu_hours, confirm=confirm_test, replicate=not no_confirm,
                        lookahead=lookahead)
    backend, _ = make_backend(backend_kind, ray_address, gpus, procs_per_run, parallel, out_dir,
                              Executor(extra_env=track_env(track)), workers=workers, log=log)
    session = search_session(settings, proposer, out_dir, backend, log)
    try:
        decisions = session.run()
    finally:
        if hasattr(proposer, "cleanup"):
            proposer.cleanup(keep_base=False)
    table = Table(title=f"golflab auto: {out_dir}")
    for col in ("#", "experiment", "change", "mean", "Δ", "p", "verdict", "test"):
        table.add_column(col, overflow="fold")  # at 80 columns the change folds onto more lines, never cut
    for d in decisions:
        change = " ".join([d.description] * bool(d.description) + d.overrides)
        table.add_row(str(d.idx), d.name, change, short(d.mean), short(d.delta), short(d.p),
                      f"{d.status} ({d.note})" if d.note else d.status, test_column(d))
    console.print(table)
    trained, adopted, stored = session.counts
    console.print(f"trained {trained} runs this time (+{adopted} finished before a kill); {stored} stored; "
                  f"results: {out_dir / 'results.tsv'}, {out_dir / 'progress.png'}, {out_dir / 'report.md'}")
    console.print(f"stopped: {session.stop_reason}", markup=False)
    if session.stop_reason.startswith("interrupted"):
        raise typer.Exit(130)


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



def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("auto")(auto)
