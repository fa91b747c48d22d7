"""`golflab record check RECORD_DIR`: the challenge's rules on a record folder, each with its number."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from golflab.errors import GolflabError

console = Console()
record_app = typer.Typer(help="Check parameter-golf record folders.", no_args_is_help=True)


def _values(items: list[str]) -> list[float]:
    out = []
    for item in items:
        for part in item.replace(",", " ").split():
            try:
                out.append(float(part))
            except ValueError:
                raise GolflabError(f"--sota-values: {part!r} is not a number") from None
    return out


@record_app.command("check")
def check_cmd(
    record_dir: Path = typer.Argument(..., help="A record folder: train*.log per seed, submission.json, train_gpt.py."),
    against: Path | None = typer.Option(None, "--against", help="The current best record's folder (per-seed val_loss from its logs)."),
    sota_values: list[str] = typer.Option([], "--sota-values", help="The current best's per-seed val_loss (repeatable or comma-separated)."),
) -> None:
    """Train and eval time (<= 600 s on 8xH100), size (<= 16,000,000 bytes), three seeds of one config and,
    with --against or --sota-values, the margin over the current best (>= 0.005 nats at p < 0.01).
    Exit 0 when every rule passes, 1 when one fails, 2 on bad input."""
    from golflab.record.check import check_record
    from golflab.record.logs import seed_losses

    if against is not None and sota_values:
        raise GolflabError("give either --against or --sota-values, not both")
    old = seed_losses(against) if against is not None else (_values(sota_values) or None)
    results = check_record(record_dir, old)
    table = Table("rule", "result", "measured", "limit", title=str(record_dir))
    for r in results:
        table.add_row(r.rule, "[green]pass[/]" if r.passed else "[bold red]FAIL[/]", r.value, r.limit)
    console.print(table)
    if old is None:
        console.print("margin over the current best: not checked (pass --against or --sota-values)")
    if not all(r.passed for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(record_app, name="record")
