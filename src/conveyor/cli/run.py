"""`conveyor run`: execute the project's pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conveyor.cli._app import state
from conveyor.cli._console import console

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conveyor.cli._progress import RichReporter
    from conveyor.store import MetadataStore, RunRecord

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
    trigger: Annotated[
        str | None,
        typer.Option(
            "--trigger",
            hidden=True,
            help="The retraining trigger (full id) this run carries out; the controller sets it.",
        ),
    ] = None,
) -> None:
    """Run the pipeline; unchanged steps are skipped, a failed run can be resumed."""
    if trigger is not None and resume:
        raise typer.BadParameter("--trigger starts a new run; it cannot be combined with --resume")
    execute(state(ctx).project, resume=resume, force=force, trigger=trigger)


def execute(
    project: Path | None,
    *,
    resume: bool = False,
    force: bool = False,
    until: str | None = None,
    trigger: str | None = None,
) -> None:
    """Run the project's pipeline (only up to the step ``until`` if given) and show the result.

    With ``trigger`` (a retraining trigger's id) the run is tagged with the trigger, and the
    trigger gets the run's id as soon as the run exists.
    """
    from conveyor.cli._progress import RichReporter
    from conveyor.cli.runs import render_steps
    from conveyor.pipeline import Runner, pipeline_from_spec
    from conveyor.session import Session

    with Session.open(project) as session:
        loaded = session.require_spec()
        pipeline = pipeline_from_spec(loaded, session.project.root)
        if until is not None:
            pipeline = pipeline.upto(until)
        reporter = RichReporter(console)
        linked: dict[str, Any] = {}
        if trigger is not None:
            reporter, linked = _triggered(session.store, loaded.spec.name, trigger)
        runner = Runner(
            pipeline,
            store=session.store,
            artifacts=session.artifacts,
            project=loaded.spec.name,
            project_root=session.project.root,
            spec_hash=loaded.sha256,
            reporter=reporter,
            **linked,
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


def _triggered(
    store: MetadataStore, project: str, trigger_id: str
) -> tuple[RichReporter, dict[str, Any]]:
    """A reporter that links the new run to the trigger, and the Runner's trigger and tags.

    Raises:
        RecordNotFoundError: No trigger has this id.
        PipelineError: The trigger belongs to another project.
    """
    from conveyor.cli._progress import RichReporter
    from conveyor.errors import PipelineError
    from conveyor.monitor._retrainer import ACTOR, trigger_tags

    record = store.get_retrain_trigger(trigger_id)
    if record.project != project:
        raise PipelineError(
            f"retraining trigger {trigger_id} belongs to project {record.project!r}, not "
            f"{project!r}; run it from that project's folder"
        )

    class Linking(RichReporter):
        def run_started(self, run: RunRecord, steps: Sequence[str], *, resumed: bool) -> None:
            store.update_retrain_trigger(record.id, run_id=run.id, status="running")
            super().run_started(run, steps, resumed=resumed)

    options = {"trigger": "retrain", "tags": trigger_tags(record), "actor": ACTOR}
    return Linking(console), options
