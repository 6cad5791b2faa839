"""`conveyor monitor quality`: the live metric per model version and time window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli._app import state
from conveyor.cli._console import console

if TYPE_CHECKING:
    from conveyor.monitor import QualityPoint, QualityReport

__all__ = ["quality", "render_quality"]


def _duration(value: str | None) -> timedelta | None:
    if value is None:
        return None
    from pydantic_core import PydanticCustomError

    from conveyor.spec import parse_duration

    try:
        parsed = parse_duration(value)
    except PydanticCustomError as err:
        raise typer.BadParameter(f"{value!r} is not a duration such as 30m, 1h or 1d") from err
    if not isinstance(parsed, timedelta) or parsed <= timedelta(0):
        raise typer.BadParameter(f"{value!r} is not a positive duration such as 30m, 1h or 1d")
    return parsed


def _instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise typer.BadParameter(
            f"{value!r} is not an ISO date or time such as 2026-03-01 or 2026-03-01T12:00Z"
        ) from err
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def quality(
    ctx: typer.Context,
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            "-w",
            help="Length of each time window (e.g. 30m, 1h, 1d).",
            show_default="monitor.quality.window",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only predictions logged at or after this time (ISO, UTC)."),
    ] = None,
    shadow: Annotated[
        bool, typer.Option("--shadow/--no-shadow", help="Also report shadow versions.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the HTML report here.")
    ] = None,
) -> None:
    """Measure the served versions on the predictions that have labels; store JSON and HTML.

    Reports go to <project>/reports/quality-<utc>.json and .html.
    """
    from conveyor.errors import SpecError
    from conveyor.monitor import joined_predictions, live_quality
    from conveyor.monitor._loop_quality import save_quality_report
    from conveyor.session import Session
    from conveyor.spec import QualitySpec

    length, start = _duration(window), _instant(since)
    with Session.open(state(ctx).project) as session:
        spec = session.require_spec().spec
        if spec.model is None:
            raise SpecError(
                "live quality needs the model's task: add a model section (task, target) to "
                "the spec"
            )
        settings = spec.monitor.quality or QualitySpec()
        with console.status("joining the prediction log with the labels..."):
            joined = joined_predictions(
                session.settings.artifacts_url,
                key=settings.key,
                since=start,
                include_shadow=shadow,
            )
        with console.status("measuring..."):
            report = live_quality(
                joined,
                task=spec.model.task,
                metric=settings.metric,
                window=length or settings.window,
                min_labels=settings.min_labels,
            )
        json_path, html_path = save_quality_report(report, session.project.root / "reports")
        if html is not None:
            report.render_html(html)
    if as_json:
        console.print_json(json.dumps(report.to_json()))
        return
    console.print(render_quality(report))
    console.print(f"report: {escape(str(html_path))} (and {escape(json_path.name)})")


def _value(point: QualityPoint) -> str:
    if point.value is None:
        return f"[yellow]n/a[/] [dim]({escape(point.reason or '')})[/]"
    text = f"{point.value:.4g}"
    if point.ci_low is not None and point.ci_high is not None:
        text += f" [dim][{point.ci_low:.4g}, {point.ci_high:.4g}][/]"
    return text


def render_quality(report: QualityReport) -> Table:
    """One row per version overall, then one per version and window."""
    better = "higher" if report.direction == "maximize" else "lower"
    table = Table(title=f"live {report.metric} ({better} is better)", title_justify="left")
    table.add_column("window (UTC)")
    table.add_column("version")
    for name in ("predictions", "labelled", "coverage"):
        table.add_column(name, justify="right")
    table.add_column(f"{report.metric} [{report.confidence:.0%} CI]")
    for points, overall in ((report.versions, True), (report.windows, False)):
        for point in points:
            when = (
                "all"
                if overall or point.window_start is None
                else (f"{point.window_start:%Y-%m-%d %H:%M}")
            )
            table.add_row(
                when,
                f"v{point.model_version}" + (" (shadow)" if point.shadow else ""),
                f"{point.n_predictions:,}",
                f"{point.n_labelled:,}",
                f"{point.coverage:.1%}",
                _value(point),
                end_section=overall and point is points[-1],
            )
    return table
