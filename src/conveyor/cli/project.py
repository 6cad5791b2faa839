"""`conveyor init` and `conveyor validate-spec`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli._app import state
from conveyor.cli._console import console

app = typer.Typer()


@app.command()
def init(
    ctx: typer.Context,
    directory: Annotated[
        Path, typer.Argument(help="Folder for the new project (created if missing).")
    ] = Path(),
    name: Annotated[
        str | None, typer.Option(help="Project name (default: the folder's name).")
    ] = None,
) -> None:
    """Create a project: a commented conveyor.yaml, example steps and data, and .conveyor/."""
    from conveyor.scaffold import init_project

    project = init_project(directory, name=name)
    console.print(f"Created project in [bold]{project.root}[/]")
    for path in ("conveyor.yaml", "steps.py", "data/example.csv", ".conveyor/"):
        console.print(f"  {path}")
    console.print("Next: [bold]conveyor validate-spec[/], then [bold]conveyor run[/]")


@app.command("validate-spec")
def validate_spec(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(
            help="The spec file (default: the project's conveyor.yaml).", dir_okay=False
        ),
    ] = None,
) -> None:
    """Check a spec without running anything."""
    from conveyor.spec import load_spec
    from conveyor.workspace import Project

    if path is None:
        root = state(ctx).project
        project = Project.at(root) if root else Project.find()
        path = project.spec_path
    loaded = load_spec(path)
    spec = loaded.spec
    sections = [
        key
        for key, value in spec.model_dump(by_alias=True, exclude_defaults=True).items()
        if value not in (None, {}, [], "") and key not in ("name", "description")
    ]
    console.print(f"[green]✓[/] {path} is valid: project [bold]{spec.name}[/]")
    console.print(f"  sections: {', '.join(sections) or 'none'}")
    console.print(f"  spec hash: {loaded.sha256[:12]}")
