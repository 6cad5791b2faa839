"""`conveyor runs` and `conveyor runs show ID`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli._app import state
from conveyor.cli._console import STATUS_STYLE, console

if TYPE_CHECKING:
    from conveyor.store import StepRunRecord

app = typer.Typer(help="List pipeline runs and show their steps.")


@app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
) -> None:
    """List the latest pipeline runs, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from conveyor.pipeline import reap_stale_runs
    from conveyor.session import Session

    with Session.open(state(ctx).project, need_spec=False) as session:
        if session.name:
            reap_stale_runs(session.store, session.name)
        records = session.store.list_runs(project=session.name, limit=limit)
        if not records:
            console.print("No runs yet; start one with [bold]conveyor run[/]")
            return
        table = Table("run", "status", "started", "duration", "attempt", "steps", "by")
        for record in records:
            steps = session.store.list_step_runs(record.id)
            cached = sum(s.status.value in ("cached", "reused") for s in steps)
            style = STATUS_STYLE.get(record.status.value, "")
            table.add_row(
                record.id[:8],
                f"[{style}]{record.status.value}[/]",
                _when(record.created_at),
                _duration((record.finished_at or datetime.now(UTC)) - record.created_at),
                str(record.attempt),
                f"{len(steps)} ({cached} cached)",
                record.actor,
            )
        console.print(table)


@app.command()
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
) -> None:
    """Show one run: its steps, their status, timings and cache hits."""
    from conveyor.session import Session

    with Session.open(state(ctx).project, need_spec=False) as session:
        record = session.store.get_run(run_id)
        style = STATUS_STYLE.get(record.status.value, "")
        console.print(f"run [bold]{record.id}[/] of [bold]{record.project}[/]")
        console.print(f"  status   [{style}]{record.status.value}[/] (attempt {record.attempt})")
        console.print(
            f"  started  {_when(record.created_at)} by {record.actor} on {record.hostname}"
        )
        if record.finished_at:
            console.print(f"  finished {_when(record.finished_at)}")
        console.print(f"  spec     {record.spec_hash[:12]}")
        console.print(render_steps(session.store.list_step_runs(record.id)))
        if record.error:
            console.print(f"[red]error:[/] {escape(record.error)}")


def render_steps(steps: Sequence[StepRunRecord]) -> Table:
    """A table of a run's steps: status, duration, attempts, cache key and outputs."""
    table = Table("step", "status", "duration", "attempts", "cache key", "outputs")
    for step in steps:
        style = STATUS_STYLE.get(step.status.value, "")
        outputs = ", ".join(f"{k}={v[:8]}" for k, v in step.output_hashes.items())
        duration = f"{step.duration_s:.2f}s" if step.duration_s is not None else "-"
        table.add_row(
            step.name,
            f"[{style}]{step.status.value}[/]",
            duration,
            str(step.attempts),
            (step.cache_key or "-")[:12],
            outputs or "-",
        )
    return table


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _duration(delta: object) -> str:
    seconds = getattr(delta, "total_seconds", lambda: 0.0)()
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"
