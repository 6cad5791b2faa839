"""`conveyor run`: execute the project's pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli._app import state
from conveyor.cli._console import console

app = typer.Typer()


@app.command()
def run(
    ctx: typer.Context,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the latest failed or interrupted run."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Run every step even if its result is cached.")
    ] = False,
) -> None:
    """Run the pipeline; unchanged steps are skipped, a failed run can be resumed."""
    execute(state(ctx).project, resume=resume, force=force)


def execute(
    project: Path | None, *, resume: bool = False, force: bool = False, until: str | None = None
) -> None:
    """Run the project's pipeline (only up to the step ``until`` if given) and show the result."""
    from conveyor.cli._progress import RichReporter
    from conveyor.cli.runs import render_steps
    from conveyor.pipeline import Runner, pipeline_from_spec
    from conveyor.session import Session

    with Session.open(project) as session:
        loaded = session.require_spec()
        pipeline = pipeline_from_spec(loaded, session.project.root)
        if until is not None:
            pipeline = pipeline.upto(until)
        runner = Runner(
            pipeline,
            store=session.store,
            artifacts=session.artifacts,
            project=loaded.spec.name,
            project_root=session.project.root,
            spec_hash=loaded.sha256,
            reporter=RichReporter(console),
        )
        result = runner.run(resume=resume, force=force)
        skipped = sum(s.status.value in ("cached", "reused") for s in result.steps)
        console.print(render_steps(result.steps))
        if skipped == len(result.steps):
            console.print(
                f"[green]✓[/] run {result.run.id[:8]} succeeded: all {skipped} steps unchanged "
                "(cached)"
            )
        else:
            console.print(
                f"[green]✓[/] run {result.run.id[:8]} succeeded: "
                f"{len(result.steps) - skipped} ran, {skipped} cached"
            )
