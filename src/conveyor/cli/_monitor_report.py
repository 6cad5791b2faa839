"""`conveyor monitor report`: the newest monitoring run's HTML report, on this machine."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from conveyor.cli._app import state
from conveyor.cli._console import console

if TYPE_CHECKING:
    from conveyor.store import MonitorRunRecord

__all__ = ["ReportKind", "report"]


class ReportKind(StrEnum):
    """Which monitoring runs to look at."""

    drift = "drift"
    quality = "quality"


def report(
    ctx: typer.Context,
    kind: Annotated[
        ReportKind | None,
        typer.Option("--kind", "-k", help="Only runs of this kind (default: the newest of both)."),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the HTML report in the web browser.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run and its report's path as JSON.")
    ] = False,
) -> None:
    """Print the path of the newest monitoring run's HTML report (fetched if not on disk).

    Runs are stored by `conveyor controller` (drift per window of the prediction log, live
    quality when labels arrive) and by `conveyor monitor drift`; a report missing from
    <project>/reports (written on another machine, or cleaned) is copied back from the
    artifact store.
    """
    import webbrowser

    from conveyor.monitor._run_reports import run_report
    from conveyor.session import Session

    with Session.open(state(ctx).project) as session:
        project = session.require_spec().spec.name
        found = session.store.list_monitor_runs(
            project, kind=None if kind is None else kind.value, limit=1
        )
        if not found:
            _raise_no_run(project, kind)
        run = found[0]
        folder = session.project.root / "reports"
        html_path = run_report(run, session.artifacts, folder)
        json_path = None
        if "json" in run.artifacts:
            json_path = run_report(run, session.artifacts, folder, fmt="json")
    if open_browser:
        webbrowser.open(html_path.resolve().as_uri())
    if as_json:
        console.print_json(json.dumps(_as_json(run, html_path, json_path)))
        return
    flag = _verdict(run)
    console.print(
        f"{run.kind} run {run.id}, {run.created_at:%Y-%m-%d %H:%M:%S} UTC: {flag}",
        highlight=False,
    )
    console.print(escape(str(html_path)), soft_wrap=True, highlight=False)


def _raise_no_run(project: str, kind: ReportKind | None) -> None:
    from conveyor.errors import RecordNotFoundError

    if kind is ReportKind.quality:
        how = (
            "add `monitor: {quality: {...}}` to the spec, ingest labels with `conveyor labels "
            "ingest`, and keep `conveyor controller` running"
        )
    else:
        how = (
            "run `conveyor controller` (it judges each window of the prediction log) or "
            "`conveyor monitor drift` for a check now"
        )
    what = "monitoring" if kind is None else kind.value
    raise RecordNotFoundError(f"project {project!r} has no {what} run yet; {how}")


def _verdict(run: MonitorRunRecord) -> str:
    score = "" if run.score is None else f" {run.score:.3g}"
    if run.kind == ReportKind.drift:
        return ("[bold red]drift[/]" if run.flagged else "[green]no drift[/]") + (
            f" (drifted share{score})" if score else ""
        )
    metric = str(run.summary.get("metric", "quality"))
    text = f"{escape(metric)}{score}"
    return f"[bold red]{text}, dropped[/]" if run.flagged else text


def _as_json(run: MonitorRunRecord, html: Path, json_path: Path | None) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return None if value is None else str(value.isoformat())

    return {
        "id": run.id,
        "kind": run.kind,
        "created_at": iso(run.created_at),
        "model_version": run.model_version,
        "window_start": iso(run.window_start),
        "window_end": iso(run.window_end),
        "rows": run.rows,
        "flagged": run.flagged,
        "score": run.score,
        "html": str(html),
        "json": None if json_path is None else str(json_path),
        "summary": run.summary,
    }
