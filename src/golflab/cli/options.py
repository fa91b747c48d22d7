"""Options shared by the commands that build a RunConfig (train, model info, config show, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from golflab.config import RunConfig, load_config

PresetOpt = Annotated[str | None, typer.Option("--preset", "-p", help="Named preset (see `golflab presets`).")]
ConfigOpt = Annotated[list[Path] | None, typer.Option("--config", "-c", help="TOML config file(s), applied in order.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Dotted override, e.g. --set model.mlp=swiglu (repeatable)."),
]
BudgetOpt = Annotated[
    str | None, typer.Option("--budget", "-b", help="Training budget: 600s, 10m, 2000steps or 5e8tokens.")
]
DataOpt = Annotated[Path | None, typer.Option("--data", "-d", help="Dataset directory (from `golflab prepare`).")]
TrackOpt = Annotated[
    str | None,
    typer.Option("--track", envvar="GOLFLAB_TRACK",
                 help="Mirror config, metrics and result to wandb, mlflow or trackio (pip install 'golflab[NAME]')."),
]
TrackProjectOpt = Annotated[
    str, typer.Option("--track-project", envvar="GOLFLAB_TRACK_PROJECT", help="Tracker project / experiment name.")
]


def resolve_config(
    preset: str | None,
    config: list[Path] | None,
    overrides: list[str] | None,
    budget: str | None = None,
    data: Path | None = None,
) -> RunConfig:
    extra = {"data": {"path": str(data)}} if data is not None else None
    return load_config(preset=preset, files=config, overrides=overrides, budget=budget, extra=extra)
