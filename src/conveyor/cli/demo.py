"""`conveyor demo`: the closed loop (as far as it exists) on real data, in one command."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer
from rich.markup import escape

from conveyor.cli._console import console

if TYPE_CHECKING:
    from conveyor.pipeline import RunResult
    from conveyor.session import Session
    from conveyor.workspace import Project

app = typer.Typer()

#: The second run's change: more trees, so its model is a challenger to the first one's.
_FIRST_PARAMS: Final = "n_estimators: 150,"
_SECOND_PARAMS: Final = "n_estimators: 250,"


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Where to create the demo project (default: a new temp folder)."
        ),
    ] = None,
) -> None:
    """Build the flights demo project and run its pipeline twice.

    The first run ingests, validates, tunes, trains, evaluates and registers a champion; the
    second, with one parameter changed, trains a challenger that the gate compares with it.
    """
    from conveyor.demo import create_flights_project
    from conveyor.session import Session

    root = directory or Path(tempfile.mkdtemp(prefix="conveyor-demo-"))
    project = create_flights_project(root)
    console.print(f"Demo project: [bold]{project.root}[/] (336,776 NYC flights of 2013)")
    with Session.open(project.root) as session:
        console.rule("first run: data, tuning, training, gate, registry")
        result = _run(session, project)
        spec_path = project.spec_path
        text = spec_path.read_text("utf-8")
        spec_path.write_text(text.replace(_FIRST_PARAMS, _SECOND_PARAMS, 1), "utf-8")
        console.rule("second run: n_estimators 150 -> 250, so a challenger")
        with Session.open(project.root) as changed:
            result = _run(changed, project)
        _summary(session, project, result)


def _run(session: Session, project: Project) -> RunResult:
    from conveyor.cli._progress import RichReporter
    from conveyor.cli.runs import render_steps
    from conveyor.pipeline import Runner, pipeline_from_spec

    loaded = session.require_spec()
    runner = Runner(
        pipeline_from_spec(loaded, project.root),
        store=session.store,
        artifacts=session.artifacts,
        project=loaded.spec.name,
        project_root=project.root,
        spec_hash=loaded.sha256,
        reporter=RichReporter(console),
    )
    result = runner.run()
    console.print(render_steps(result.steps))
    return result


def _summary(session: Session, project: Project, result: RunResult) -> None:
    from conveyor.cli.models import render_versions
    from conveyor.registry import ModelRegistry, connect

    report = next(s for s in result.steps if s.name == "report").output_hashes["html"]
    target = session.artifacts.get_file(report, project.root / "reports" / "delays.html")
    validation = max((project.root / "reports").glob("validation-*.html"), key=_mtime)
    card = max((project.root / "reports").glob("model-card-*.html"), key=_mtime)
    versions = session.store.list_dataset_versions(limit=2)
    checks = json.loads(session.artifacts.get_bytes(versions[0].artifacts["report_json"]))
    for version in versions:
        console.print(
            f"dataset version [bold]{version.id}[/] ({version.name}): {version.row_count:,} rows"
        )
    for check in checks["checks"]:
        if not check["passed"]:
            console.print(f"  [yellow]quarantined[/] {check['name']}: {escape(check['detail'])}")
    name = session.require_spec().spec.name
    registry = ModelRegistry(connect(session.settings.mlflow_tracking_uri), name)
    console.print(render_versions(registry.versions()))
    console.print(f"[green]✓[/] validation report: {validation}")
    console.print(f"[green]✓[/] model card: {card}")
    console.print(f"[green]✓[/] delays report: {target}")
    command = "conveyor" if shutil.which("conveyor") else sys.argv[0]
    console.print(f"Explore it: [bold]{command} --project {project.root} models list[/]")
    console.print(f"            [bold]{command} --project {project.root} lineage champion[/]")
    mlflow = session.settings.mlflow_tracking_uri
    console.print(f"            [bold]mlflow ui --backend-store-uri {mlflow}[/]")


def _mtime(path: Path) -> float:
    return path.stat().st_mtime
