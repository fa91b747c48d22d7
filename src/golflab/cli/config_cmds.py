"""`golflab presets` and `golflab config`: inspect what a preset, file and overrides resolve to."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from golflab.cli.options import BudgetOpt, ConfigOpt, DataOpt, PresetOpt, SetOpt, resolve_config

console = Console()


def presets() -> None:
    """List the named presets."""
    from golflab.config.presets import PRESETS

    table = Table("preset", "what it is")
    for name, (desc, _) in PRESETS.items():
        table.add_row(name, desc)
    console.print(table)


def config(
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    budget: BudgetOpt = None,
    data: DataOpt = None,
    diff: bool = typer.Option(False, "--diff", help="Show only what differs from the defaults."),
) -> None:
    """Print the resolved config as TOML, with its hash."""
    from golflab.config import config_hash, diff_from_default, to_toml
    from golflab.config.loader import dumps_toml

    cfg = resolve_config(preset, config, overrides, budget, data)
    text = dumps_toml(diff_from_default(cfg)) if diff else to_toml(cfg)
    print(f"# config hash {config_hash(cfg)}")
    print(text, end="")


def register(app: typer.Typer) -> None:
    app.command("presets")(presets)
    app.command("config")(config)
