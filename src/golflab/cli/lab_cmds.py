"""`golflab lab run|status|report`: run an experiment plan, watch it, and write its report."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from golflab.cli.slots import BackendOpt, RayAddressOpt
from golflab.errors import GolflabError

console = Console()
lab_app = typer.Typer(help="Experiment plans: baseline + arms x seeds, judged with paired/Welch tests.",
                      no_args_is_help=True)

PlanArg = Annotated[Path, typer.Argument(help="Plan file (TOML), e.g. plans/mlp-activations.toml.")]
StoreOpt = Annotated[Path | None, typer.Option("--store", help="Lab store (default: <plan dir>/<name>.lab.sqlite).")]
PresetOpt = Annotated[str | None, typer.Option("--preset", "-p", help="Replace the plan's baseline preset.")]
DataOpt = Annotated[Path | None, typer.Option("--data", "-d", help="Replace the plan's dataset directory.")]


def _default_timeout(plan) -> float | None:
    """A run may take its wallclock budget twice over plus 10 minutes (compile, eval, artifact)."""
    cfg = plan.build_config([], plan.seed_of(0))
    return 2 * cfg.budget.seconds + 600 if cfg.budget.seconds > 0 else None


@lab_app.command("run")
def run(
    plan_path: PlanArg,
    gpus: Annotated[str | None, typer.Option("--gpus", help="GPU ids, e.g. 0,1,2,3; 'auto' (default) or 'cpu'.")] = None,
    procs_per_run: Annotated[int, typer.Option("--procs-per-run", help="GPUs per run (torchrun when > 1).")] = 1,
    parallel: Annotated[int, typer.Option("--parallel", help="Concurrent runs without GPUs.")] = 1,
    data: DataOpt = None,
    preset: PresetOpt = None,
    store: StoreOpt = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds before a run is killed "
                                                  "(default: 2 x budget + 600).")] = None,
    hours: Annotated[float | None, typer.Option("--hours", help="Wall-clock budget of the lab (all sessions).")] = None,
    launcher: Annotated[str | None, typer.Option("--launcher", hidden=True,
                                                 help="Command replacing `python -m golflab` (wrappers, tests).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress display.")] = False,
    workers: Annotated[bool | None, typer.Option("--workers/--no-workers", help="A persistent worker per slot "
                                                 "(torch and compiled graphs loaded once; default on)")] = None,
    track: Annotated[str | None, typer.Option("--track", help="Mirror every run to wandb, mlflow or trackio "
                                              "(the extra must be installed).")] = None,
    backend_kind: BackendOpt = "local",
    ray_address: RayAddressOpt = None,
) -> None:
    """Run (or resume) a plan: every slot busy, each run its own process. Ctrl-C lets the runs in flight
    finish (a second Ctrl-C stops them); a rerun resumes without repeating or losing a run."""
    from golflab.cli.slots import make_backend, track_env
    from golflab.engine.backend import Executor
    from golflab.lab.plan import load_plan
    from golflab.lab.runner import default_store_path, lab_dir_of, lab_session

    plan = load_plan(plan_path, preset=preset, data=data)
    executor = Executor(launcher=shlex.split(launcher) if launcher else None, extra_env=track_env(track))
    store_path = store or default_store_path(plan)
    plain = quiet or not console.is_terminal
    log = None if quiet else _plain_log if plain else None
    backend, where = make_backend(backend_kind, ray_address, gpus, procs_per_run, parallel, lab_dir_of(store_path),
                                  executor, timeout if timeout else _default_timeout(plan), workers, log)
    try:
        session = lab_session(plan, backend, store_path, log=log, hours=hours)
    except GolflabError:
        backend.close()
        raise
    console.print(f"lab [bold]{escape(plan.name)}[/]: store {escape(str(store_path))}, {escape(where)}")
    if plain:
        session.run()
    else:
        from golflab.lab.live import live_progress

        with live_progress(console) as update:
            session.on_progress = update
            session.run()
    trained, adopted, stored = session.counts
    console.print(f"trained {trained} run(s) this time (+{adopted} adopted from an earlier session), {stored} stored; "
                  f"stopped: {session.stop_reason}", markup=False)
    _print_status(plan_path, store, preset, data)
    if session.stop_reason.startswith("interrupted"):
        sys.exit(130)


def _plain_log(msg: str) -> None:
    """Progress as plain lines (stdout is a file or a pipe): one line per event, with the time."""
    import time

    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def _open(plan_path: Path, store: Path | None, preset: str | None, data: Path | None):
    from golflab.lab.plan import load_plan
    from golflab.lab.runner import open_lab
    from golflab.lab.summary import stored_plan, summarize

    file_plan = load_plan(plan_path, preset=preset, data=data)
    st = open_lab(file_plan, store)
    plan = stored_plan(st, file_plan)
    return plan, st, summarize(plan, st)


def _print_status(plan_path: Path, store: Path | None, preset: str | None, data: Path | None) -> None:
    from rich import box

    from golflab.lab.report import fmt

    plan, st, arms = _open(plan_path, store, preset, data)
    table = Table(title=f"{plan.name}: {plan.metric} (lower is better)", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True,
                  caption="runs = ok/failed/in flight; μ, σ, Δ and p on the seeds the verdict used; p is the "
                          "deciding test's; Δ against the baseline or the promoted arm (see below)")
    for col in ("arm", "runs", "mean", "σ", "Δ", "p", "test", "verdict"):
        # numbers are never cut; names fold onto a second line rather than lose their end
        table.add_column(col, justify="left" if col in ("arm", "test", "verdict") else "right",
                         overflow="fold", min_width={"arm": 8, "runs": 5, "verdict": 12}.get(col, 6))
    styles = {"win": "green", "loss": "red", "failed": "red"}
    for a in arms:
        c = a.comparison
        delta, p, test = (c.delta, c.p, c.test) if c else (None, None, "")
        table.add_row(a.name, f"{a.n_ok}/{a.n_failed}/{a.pending}", fmt(a.mean), fmt(a.sd), fmt(delta), fmt(p), test,
                      a.verdict, style=styles.get(a.decision.verdict if a.decision else ""))
    console.print(table)
    for a in arms:
        if a.ref not in (None, "baseline"):
            console.print(f"  {a.name}: compared with {a.ref} (promoted), built on its config", markup=False)
        if a.state in ("waiting", "skipped") and a.reason:
            console.print(f"  {a.name}: {a.state}, {a.reason}", markup=False)
        elif a.decision is not None and a.reason and a.name != "baseline":
            console.print(f"  {a.name}: {a.reason}", markup=False)
    if plan.vary:
        console.print(f"  this plan compares harness settings on purpose: {', '.join(plan.vary)}", markup=False)
    from golflab.lab.summary import time_line, time_use

    console.print(f"  {time_line(time_use(st))}", markup=False)
    st.close()


@lab_app.command("status")
def status(plan_path: PlanArg, store: StoreOpt = None, preset: PresetOpt = None, data: DataOpt = None) -> None:
    """Per arm: runs ok/failed/pending, mean, σ, Δ, p (Welch and paired), verdict."""
    _print_status(plan_path, store, preset, data)


@lab_app.command("report")
def report(
    plan_path: PlanArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for report.md and the PNG plots.")],
    store: StoreOpt = None,
    preset: PresetOpt = None,
    data: DataOpt = None,
) -> None:
    """Write report.md (table, value lists, decisions, noise floor, seeds needed) and plots."""
    from golflab.lab.report import write_report
    from golflab.lab.summary import require_runs

    plan, st, arms = _open(plan_path, store, preset, data)
    try:
        require_runs(arms, st)
        for path in write_report(plan, st, arms, out):
            console.print(f"wrote {path}")
    finally:
        st.close()


@lab_app.command("simulate")
def simulate(
    plan_path: PlanArg,
    effect: Annotated[float | None, typer.Option("--effect", help="True improvement for the power column "
                                                 "(default 2σ).")] = None,
    sigma: Annotated[float | None, typer.Option("--sigma", help="σ of one run's metric (default: measured in the "
                                                "plan's store, else 0.005).")] = None,
    rho: Annotated[float | None, typer.Option("--rho", help="Correlation of an arm and its reference on a shared "
                                              "seed (default: measured in the store, else 0.5).")] = None,
    n: Annotated[int, typer.Option("--n", help="Simulated experiments per arm and setting.")] = 2000,
    run_seconds: Annotated[float | None, typer.Option("--run-seconds", help="GPU seconds of one run (default: "
                                                      "measured in the store, else the plan's seconds budget).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object with a key per arm.")] = False,
    store: StoreOpt = None,
    data: DataOpt = None,
    preset: PresetOpt = None,
) -> None:
    """How often the plan's decisions would be wrong, and what they cost, before a GPU-hour is spent: the
    engine's own decision flow on synthetic per-seed metrics (σ per run, correlation ρ between paired arms)."""
    import json

    from golflab.lab.plan import load_plan
    from golflab.lab.simulate import simulate_plan

    plan = load_plan(plan_path, preset=preset, data=data)
    if n < 100:
        raise GolflabError(f"--n {n}: at least 100 simulated experiments are needed for a rate")
    res = simulate_plan(plan, effect, sigma, rho, n, run_seconds, store)
    if as_json:
        print(json.dumps({a["arm"]: {k: v for k, v in a.items() if k != "arm"} for a in res["arms"]}, indent=1))
        return
    table = Table(title=f"{plan.name}: simulated decisions ({n} experiments per arm and setting)",
                  caption=res["caption"], box=None)
    for col in ("arm", "seeds", "false wins", "power", "mean seeds", "max seeds", "GPU-h"):
        table.add_column(col, justify="left" if col == "arm" else "right", overflow="fold")
    for a in res["arms"]:
        fw = f"{a['false_win_rate']:.1%} ± {2 * a['false_win_se']:.1%}"
        gpu = "-" if a["gpu_hours"] is None else f"{a['gpu_hours']:.2f}"
        table.add_row(a["arm"], f"{a['min_seeds']}..{a['max_seeds']}", fw, f"{a['power']:.1%}",
                      f"{a['mean_seeds']:.2f}", str(a["max_seeds_used"]), gpu)
    console.print(table)
    for line in res["notes"]:
        console.print(line, markup=False)


@lab_app.command("noise")
def noise(
    preset: str = typer.Option("golf-baseline", "--preset", "-p", help="Preset to measure."),
    budget: str = typer.Option("120s", "--budget", "-b", help="Budget per run."),
    seeds: int = typer.Option(4, "--seeds", "-n", help="Runs per arm."),
    data: Path = typer.Option(..., "--data", "-d", help="Dataset directory."),
    overrides: list[str] = typer.Option([], "--set", "-s", help="Dotted override of both arms (repeatable)."),
    arm_set: list[str] = typer.Option([], "--arm-set", help="Dotted override of arm B only, e.g. "
                                      "model.mlp=swiglu (repeatable); without it the arms are identical."),
    crn: bool = typer.Option(True, "--crn/--no-crn", help="Pair seeds (common random numbers) or not."),
    effect: float = typer.Option(0.005, "--effect", help="Effect size (in the metric) to size the tests for."),
    metric: str = typer.Option("val_bpb", "--metric", help="result.json key to measure."),
    out: Path = typer.Option(Path("labs/noise"), "--out", "-o", help="Where the runs go (finished runs "
                             "with the same config are reused)."),
) -> None:
    """Run a config N times as arm A and arm B (identical, or A plus --arm-set); report the spread of one
    run's metric and of the paired differences, and the seeds a Welch and a paired test need for --effect."""
    from golflab.config import load_config
    from golflab.lab.noise import measure_noise

    extra = {"data": {"path": str(data)}}
    cfg = load_config(preset=preset, budget=budget, overrides=overrides, extra=extra)
    cfg_b = load_config(preset=preset, budget=budget, overrides=[*overrides, *arm_set], extra=extra)
    r = measure_noise(cfg, seeds, out, crn=crn, metric=metric, effect=effect, cfg_b=cfg_b,
                      log=lambda m: console.print(m, markup=False))
    change = " ".join(arm_set) or "identical to A"
    console.print(f"arm A {metric}: {', '.join(f'{v:.4f}' for v in r.values_a)}")
    console.print(f"arm B ({change}) {metric}: {', '.join(f'{v:.4f}' for v in r.values_b)}  "
                  f"({'paired seeds' if crn else 'other seeds'})")
    console.print(f"mean B - A {r.delta:+.5f}   σ single run {r.sd_single:.5f}   σ paired difference {r.sd_paired:.5f}")
    from golflab.stats import seeds_text

    console.print(f"seeds per arm to detect {effect} at p<0.05 with 80% power: Welch {seeds_text(r.seeds_welch)}, "
                  f"paired {seeds_text(r.seeds_paired)}" + (" (the paired differences have no spread)"
                                                            if r.sd_paired == 0 else ""))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(lab_app, name="lab")
