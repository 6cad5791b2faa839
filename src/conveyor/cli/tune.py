"""`conveyor tune`: hyperparameter search with several worker processes, on one or many machines."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from conveyor.cli._app import state

app = typer.Typer()


@app.command()
def tune(
    ctx: typer.Context,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            help="Worker processes on this machine. Run the same command on other machines "
            "sharing the metadata store's database (CONVEYOR_DB_URL) to add theirs to the "
            "same study.",
        ),
    ] = 1,
    force: Annotated[
        bool, typer.Option("--force", help="Search again even if the result is cached.")
    ] = False,
) -> None:
    """Run the pipeline up to the `tune` step: ingest, validate, then the Optuna study.

    The study lives in the metadata store's database and is named after the project, the
    dataset and the model spec, so every worker of every machine shares it and `n_trials`
    counts over all of them. `conveyor run` then trains the final model with the best
    parameters (the tune step is cached).
    """
    from conveyor.cli.run import execute
    from conveyor.errors import SpecError
    from conveyor.session import Session
    from conveyor.train.steps import WORKERS_ENV

    with Session.open(state(ctx).project) as session:
        spec = session.require_spec().spec
        if spec.model is None or spec.model.tune is None:
            raise SpecError(
                f"{session.project.spec_path}: nothing to tune; add model.tune with a search "
                "space (see `conveyor init` for an example)"
            )
    previous = os.environ.get(WORKERS_ENV)
    os.environ[WORKERS_ENV] = str(workers)
    try:
        execute(state(ctx).project, force=force, until="tune")
    finally:
        if previous is None:
            os.environ.pop(WORKERS_ENV, None)
        else:
            os.environ[WORKERS_ENV] = previous
