"""`golflab train`, `golflab eval` and `golflab model info`."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from golflab.cli.options import (
    BudgetOpt,
    ConfigOpt,
    DataOpt,
    PresetOpt,
    SetOpt,
    TrackOpt,
    TrackProjectOpt,
    resolve_config,
)

console = Console()
err_console = Console(stderr=True)
model_app = typer.Typer(help="Inspect models built from a config.", no_args_is_help=True)


def train(
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    budget: BudgetOpt = None,
    data: DataOpt = None,
    out: Path = typer.Option(Path("runs/latest"), "--out", "-o", help="Run directory to write."),
    resume: bool = typer.Option(False, "--resume", help="Continue from RUN_DIR/checkpoint.pt."),
    force: bool = typer.Option(False, "--force", help="Overwrite the run already in --out."),
    track: TrackOpt = None,
    track_project: TrackProjectOpt = "golflab",
) -> None:
    """Train one model; writes config.toml, metrics.jsonl, train.log, model.pt and result.json to --out.

    Under `torchrun --nproc_per_node=N -m golflab train ...` it runs data-parallel with
    grad_accum = train.micro_batches // N.

    Ctrl-C (or SIGTERM) stops after the current step and saves a checkpoint that --resume continues.
    """
    from golflab.config import to_dict
    from golflab.train.loop import train as run_training
    from golflab.train.rundir import prepare_out_dir

    main_rank = os.environ.get("RANK", "0") == "0"  # checks, trackers and printing once under torchrun
    cfg = resolve_config(preset, config, overrides, budget, data)
    tracker = None
    if main_rank:
        prepare_out_dir(out, resume=resume, force=force)
        if track:
            from golflab.track import open_tracker

            tracker = open_tracker(track, project=track_project, name=out.resolve().name, config=to_dict(cfg),
                                   run_dir=out)
    if main_rank and cfg.artifact.enabled:
        _prefetch_script(cfg)
    result = run_training(cfg, out, resume=resume, tracker=tracker)
    if result.get("status") == "interrupted":
        if main_rank:
            loss = result.get("train_loss")
            err_console.print(f"[yellow]{result['error']}[/] (train loss {'-' if loss is None else f'{loss:.4f}'}); "
                              f"checkpoint saved. Resume with: {escape(resume_command())}", highlight=False,
                              soft_wrap=True)
        raise typer.Exit(INTERRUPTED_EXIT)
    if main_rank:
        _print_result(result)


def _prefetch_script(cfg) -> None:
    """On a GPU, render the run's script (its code bytes count in the artifact) on a spare core while it
    trains; on a CPU the cores are the trainer's, and it renders at the end as before."""
    import torch

    if torch.cuda.is_available() and (os.cpu_count() or 1) > 2:
        from golflab.artifact.export import prefetch_script

        prefetch_script(cfg)


INTERRUPTED_EXIT = 130  # as a shell reports a Ctrl-C; also after SIGTERM, so a caller never takes it for success


def resume_command() -> str:
    """This command line with --resume (and without --force), for the user to paste."""
    args = [a for a in sys.argv[1:] if a not in ("--resume", "--force")]
    prefix = "torchrun ... -m golflab" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else "golflab"
    return f"{prefix} {shlex.join(args)} --resume"


def _print_result(r: dict) -> None:
    table = Table("metric", "value", title="result")
    for key in ("val_loss", "val_bpb", "sliding_val_bpb", "steps", "train_seconds", "ms_per_step",
                "tokens_per_second", "mfu", "peak_mem_gb"):
        v = r.get(key)
        if v is not None:
            table.add_row(key, f"{v:.4f}" if isinstance(v, float) else str(v))
    a = r.get("artifact") or {}
    for key in ("bytes_total", "fits", "val_bpb", "sliding_val_bpb"):
        if a.get(key) is not None:
            v = a[key]
            table.add_row(f"artifact {key}", f"{v:.4f}" if isinstance(v, float) else str(v))
    console.print(table)


def eval_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run directory (with model.pt and config.toml)."),
    split: str = typer.Option("val", "--split", help="val or test."),
    stride: int = typer.Option(0, "--stride", help="Sliding-window stride; 0 = standard eval."),
    data: DataOpt = None,
    out: Path | None = typer.Option(None, "--out", help="Write the result as JSON here."),
) -> None:
    """Re-evaluate a finished run's weights on the val or test split."""
    from golflab.train.reeval import evaluate_run

    res = evaluate_run(run_dir, split=split, stride=stride, data=data)
    if out is not None:
        out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    console.print(f"{split}: val_loss {res['val_loss']:.4f} val_bpb {res['val_bpb']:.4f} ({res['tokens']} tokens)")


@model_app.command("info")
def model_info(
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    vocab: int = typer.Option(0, "--vocab", help="Vocab size when model.vocab_size is 0."),
    table_rows: bool = typer.Option(False, "--table", help="Also print the per-parameter optimizer table."),
) -> None:
    """Parameter counts per part and FLOPs per token, read off the model built on the meta device (and the
    optimizer table), without data."""
    from golflab.model.info import flops_per_token, meta_model, param_counts
    from golflab.optim.table import build_table

    cfg = resolve_config(preset, config, overrides)
    v = cfg.model.vocab_size or vocab or 1024
    model = meta_model(cfg.model, v)
    counts = param_counts(model)
    t = Table("part", "parameters", title=f"model (vocab {v}), as built")
    t.columns[0].overflow = "fold"
    for part, n in counts.items():
        t.add_row(part, f"{n:,}")
    console.print(t)
    console.print(f"training FLOPs/token: {flops_per_token(cfg.model, v) / 1e6:.1f} M (counted on a forward of the built model)")
    if table_rows:
        rows = build_table(model, cfg.optim)
        # compact (one space between columns, a rule under the header) so whole names fit in 80 columns;
        # narrower, cells fold onto a second line rather than end in "…"
        ot = Table(title="optimizer table", box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False, show_edge=False)
        for name in ("parameter", "shape", "role", "optimizer", "lr", "betas", "wd"):
            ot.add_column(name, overflow="fold")
        for row in rows:
            ot.add_row(row.name, "x".join(map(str, row.shape)), row.role, row.optimizer, f"{row.lr:.3g}",
                       f"{row.betas[0]:g},{row.betas[1]:g}" if row.optimizer == "adam" else "-",
                       f"{row.weight_decay:g}")
        console.print(ot)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("eval")(eval_cmd)
    app.add_typer(model_app, name="model")
