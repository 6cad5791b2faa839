"""The `conveyor` command: thin Typer sub-apps that parse, call the library and render."""

from conveyor.cli import (
    controller,
    data,
    demo,
    deploy,
    k8s,
    labels,
    lineage,
    models,
    monitor,
    project,
    rollout,
    run,
    runs,
    serve,
    tune,
)
from conveyor.cli._app import app

app.add_typer(project.app)
app.add_typer(run.app)
app.add_typer(tune.app)
app.add_typer(runs.app, name="runs")
app.add_typer(data.app, name="data")
app.add_typer(models.app, name="models")
app.add_typer(monitor.app, name="monitor")
app.add_typer(labels.app, name="labels")
app.add_typer(lineage.app)
app.add_typer(demo.app)
app.add_typer(serve.app)
app.add_typer(k8s.app, name="k8s")
app.add_typer(deploy.app)
app.add_typer(rollout.app, name="rollout")
app.add_typer(controller.app)

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the `conveyor` console script."""
    app(prog_name="conveyor")
