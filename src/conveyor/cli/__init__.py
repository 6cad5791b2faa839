"""The `conveyor` command: thin Typer sub-apps that parse, call the library and render."""

from conveyor.cli import data, demo, project, run, runs
from conveyor.cli._app import app

app.add_typer(project.app)
app.add_typer(run.app)
app.add_typer(runs.app, name="runs")
app.add_typer(data.app, name="data")
app.add_typer(demo.app)

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the `conveyor` console script."""
    app(prog_name="conveyor")
