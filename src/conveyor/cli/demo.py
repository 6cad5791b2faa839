"""`conveyor demo`: the closed loop (as far as it exists) on real data, in one command."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from conveyor.cli._console import console

app = typer.Typer()


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Where to create the demo project (default: a new temp folder)."
        ),
    ] = None,
) -> None:
    """Build the flights demo project and run its pipeline twice (the second run is cached)."""
    from conveyor.cli._progress import RichReporter
    from conveyor.cli.runs import render_steps
    from conveyor.demo import create_flights_project
    from conveyor.pipeline import Runner, pipeline_from_spec
    from conveyor.session import Session

    root = directory or Path(tempfile.mkdtemp(prefix="conveyor-demo-"))
    project = create_flights_project(root)
    console.print(f"Demo project: [bold]{project.root}[/] (336,776 NYC flights of 2013)")
    with Session.open(project.root) as session:
        loaded = session.require_spec()
        for attempt in ("first run", "second run: nothing changed, so every step is cached"):
            console.rule(attempt)
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
        report = next(s for s in result.steps if s.name == "report").output_hashes["html"]
        target = session.artifacts.get_file(report, project.root / "reports" / "delays.html")
        validation = max((project.root / "reports").glob("validation-*.html"), key=_mtime)
        versions = session.store.list_dataset_versions(limit=2)
        checks = json.loads(session.artifacts.get_bytes(versions[0].artifacts["report_json"]))
    for version in versions:
        console.print(
            f"dataset version [bold]{version.id}[/] ({version.name}): {version.row_count:,} rows"
        )
    for check in checks["checks"]:
        if not check["passed"]:
            console.print(f"  [yellow]quarantined[/] {check['name']}: {escape(check['detail'])}")
    console.print(f"[green]✓[/] validation report: {validation}")
    console.print(f"[green]✓[/] delays report: {target}")
    command = "conveyor" if shutil.which("conveyor") else sys.argv[0]
    console.print(f"Explore it: [bold]{command} --project {project.root} runs[/]")


def _mtime(path: Path) -> float:
    return path.stat().st_mtime
