"""The `golflab` command: typer sub-commands, each in a module of this package.

Commands only parse arguments, call the library and print; heavy imports (torch) happen inside them
so that `golflab --help` stays fast.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from golflab.errors import GolflabError

app = typer.Typer(
    name="golflab",
    help="Train small GPTs fast and judge experiments honestly (parameter golf, NanoGPT speedrun, autoresearch).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)


def _register() -> None:
    from golflab.cli import (
        artifact_cmds,
        auto_cmds,
        config_cmds,
        data_cmds,
        lab_cmds,
        record_cmds,
        train_cmds,
    )

    for module in (config_cmds, data_cmds, train_cmds, artifact_cmds, record_cmds, lab_cmds, auto_cmds):
        module.register(app)


_register()


def main() -> None:
    """Console-script entry point: user errors become one red line and a non-zero exit code."""
    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc != 0:  # typer returns Exit codes and Ctrl-C (130) in this mode
            sys.exit(rc)
    except GolflabError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:  # a path the user gave cannot be read or written: their fix, not a bug
        if exc.filename is None:
            raise
        err_console.print(f"[bold red]error:[/] {escape(f'{exc.strerror or exc}: {exc.filename}')}", highlight=False,
                          soft_wrap=True)
        sys.exit(2)
    except Exception as exc:  # usage errors arrive here in non-standalone mode
        # click's ClickException, or the copy of click that newer typer versions vendor (typer._click)
        if any(c.__name__ == "ClickException" for c in type(exc).__mro__):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        raise
