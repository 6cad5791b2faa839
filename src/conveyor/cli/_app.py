"""The root command: global options and the one place errors become exit codes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from conveyor import __version__
from conveyor.cli._console import err_console
from conveyor.errors import ConveyorError

__all__ = ["CliState", "app", "state"]


@dataclass
class CliState:
    """Options given before the command, shared with every command through the context."""

    project: Path | None = None
    debug: bool = False


class _ConveyorGroup(TyperGroup):
    """Turns Conveyor's errors into one clear line and exit code 1 (a traceback with --debug)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ConveyorError as err:
            if _debug(ctx):
                err_console.print_exception(show_locals=False)
            err_console.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None


def _debug(ctx: Any) -> bool:
    obj = ctx.find_root().obj
    return bool(getattr(obj, "debug", False)) or os.environ.get("CONVEYOR_DEBUG") == "1"


app = typer.Typer(
    cls=_ConveyorGroup,
    name="conveyor",
    help="Conveyor runs the whole machine-learning lifecycle from one spec file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"conveyor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            "-p",
            help="The project folder (default: found by walking up from the current folder).",
            file_okay=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = CliState(project=project, debug=debug)


def state(ctx: typer.Context) -> CliState:
    """The global options of this invocation."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliState) else CliState()
