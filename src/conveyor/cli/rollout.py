"""`conveyor rollout status|pause|resume|promote|abort`: watch and steer the rollout in progress."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from conveyor.cli._app import state
from conveyor.cli._console import console

if TYPE_CHECKING:
    from rich.console import RenderableType

    from conveyor.registry import ModelRegistry
    from conveyor.session import Session
    from conveyor.store import DeploymentRecord

app = typer.Typer(
    help="Watch the rollout in progress, and pause, resume, promote or abort it.",
    no_args_is_help=True,
)

Reason = Annotated[
    str,
    typer.Option(
        "--reason",
        "-r",
        help="Why; kept in the rollout's history and the audit log.",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@contextmanager
def open_project(ctx: typer.Context) -> Iterator[tuple[Session, str]]:
    """The session of the current project and the project's name (from its spec)."""
    from conveyor.session import Session

    with Session.open(state(ctx).project) as session:
        yield session, session.require_spec().spec.name


def registry_of(session: Session, name: str) -> ModelRegistry:
    """The project's registered model (connects to MLflow)."""
    from conveyor.registry import ModelRegistry, connect

    return ModelRegistry(connect(session.settings.mlflow_tracking_uri), name)


def current_user() -> str:
    """Who runs the command, for the history and the audit log."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@app.command()
def status(
    ctx: typer.Context,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Refresh every second until Ctrl-C.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Show the latest deployment: weights, traffic, errors, latency, guardrails, events."""
    from rich.live import Live

    from conveyor.cli._rollout_view import render_report
    from conveyor.deploy import rollout_report

    with open_project(ctx) as (session, name):
        rollout = session.require_spec().spec.rollout

        def draw() -> RenderableType:
            now = datetime.now(UTC)
            report = rollout_report(session.store, name, fallback=rollout, now=now)
            if report is None:
                return (
                    f"project {escape(name)} has no deployment yet; start one with "
                    "[bold]conveyor deploy VERSION --reason TEXT[/]"
                )
            return render_report(report, now)

        if as_json:
            report = rollout_report(session.store, name, fallback=rollout)
            console.print_json(data=None if report is None else report.to_json())
            return
        if not watch:
            console.print(draw())
            return
        try:
            with Live(draw(), console=console, auto_refresh=False) as live:
                while True:
                    time.sleep(1.0)
                    live.update(draw(), refresh=True)
        except KeyboardInterrupt:
            pass


def _done(verb: str, record: DeploymentRecord) -> None:
    console.print(
        f"[green]✓[/] deployment [bold]{record.id[:8]}[/] {verb}: "
        f"weights {', '.join(f'v{v} {w:g}%' for v, w in sorted(record.weights.items()))}"
    )


@app.command()
def pause(ctx: typer.Context, reason: Reason) -> None:
    """Hold the rollout at its current weights; the controller stops moving it."""
    from conveyor.deploy import pause_rollout

    with open_project(ctx) as (session, name):
        record = pause_rollout(session.store, name, actor=current_user(), reason=reason)
    _done("paused", record)


@app.command()
def resume(ctx: typer.Context, reason: Reason) -> None:
    """Continue a paused rollout; its current step starts over."""
    from conveyor.deploy import resume_rollout

    with open_project(ctx) as (session, name):
        record = resume_rollout(session.store, name, actor=current_user(), reason=reason)
    _done(f"resumed at step {record.step + 1}", record)


@app.command()
def promote(ctx: typer.Context, reason: Reason) -> None:
    """End the rollout now: all traffic to the new version, which becomes the champion."""
    from conveyor.deploy import promote_rollout

    with open_project(ctx) as (session, name):
        registry = registry_of(session, name)
        record = promote_rollout(session.store, registry, name, actor=current_user(), reason=reason)
    _done(f"promoted; v{record.challenger_version} is the champion", record)


@app.command()
def abort(ctx: typer.Context, reason: Reason) -> None:
    """End the rollout now: all traffic back to the champion, which stays champion."""
    from conveyor.deploy import abort_rollout

    with open_project(ctx) as (session, name):
        record = abort_rollout(session.store, name, actor=current_user(), reason=reason)
    _done(f"aborted; v{record.champion_version} serves all traffic", record)
