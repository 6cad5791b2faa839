"""`conveyor monitor drift`: how far the served traffic has moved from the training data."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli._app import state
from conveyor.cli._console import console
from conveyor.cli._monitor_alerts import alerts
from conveyor.cli._monitor_quality import quality
from conveyor.cli._monitor_report import report
from conveyor.cli._monitor_triggers import triggers

if TYPE_CHECKING:
    import pyarrow as pa

    from conveyor.monitor import DriftReport
    from conveyor.registry import ModelRegistry

app = typer.Typer(
    help="Monitor the served model: data drift, live quality, alerts, retraining triggers and "
    "the stored reports.",
    no_args_is_help=True,
)
app.command("alerts")(alerts)
app.command("quality")(quality)
app.command("report")(report)
app.command("triggers")(triggers)


class Reference(StrEnum):
    """What the newest window of the prediction log is compared with."""

    training = "training"
    previous = "previous"


@app.command()
def drift(
    ctx: typer.Context,
    window: Annotated[
        int | None,
        typer.Option(
            "--window",
            "-w",
            min=1,
            help="Newest logged predictions to check.",
            show_default="monitor.drift.window",
        ),
    ] = None,
    reference: Annotated[
        Reference,
        typer.Option(
            "--reference",
            help="training: the champion's training data; previous: the window before "
            "(also compares the predictions).",
        ),
    ] = Reference.training,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the HTML report here.")
    ] = None,
) -> None:
    """Compare the newest predictions' inputs with a reference; store JSON and HTML reports.

    Reports go to <project>/reports/drift-<utc>.json and .html (earlier ones plotted too) and
    to the artifact store; the check is recorded as a drift monitoring run (see `monitor
    report`).
    """
    from conveyor.monitor import (
        compute_drift,
        load_history,
        prediction_window,
        training_reference,
    )
    from conveyor.monitor._loop import CLI_SOURCE, record_drift
    from conveyor.session import Session

    with Session.open(state(ctx).project) as session, tempfile.TemporaryDirectory() as tmp:
        spec = session.require_spec().spec
        settings = spec.monitor.drift
        rows = window or settings.window
        artifacts_url = session.settings.artifacts_url
        with console.status("reading the prediction log..."):
            current = prediction_window(artifacts_url, rows)
            if reference is Reference.training:
                from conveyor.registry import ModelRegistry, connect

                registry = ModelRegistry(connect(session.settings.mlflow_tracking_uri), spec.name)
                baseline, what = training_reference(
                    registry, session.store, session.artifacts, Path(tmp)
                )
                prefix = "in_"
                version, dataset = _champion(registry)
            else:
                previous = prediction_window(artifacts_url, rows, skip=current.num_rows)
                if previous.num_rows == 0:
                    raise_no_previous(current.num_rows)
                baseline, what, prefix = (
                    previous,
                    f"the {previous.num_rows:,} predictions before",
                    "",
                )
                version, dataset = _only_version(current), "previous window"
        with console.status("computing drift..."):
            report = compute_drift(baseline, current, spec=settings, current_prefix=prefix)
        folder = session.project.root / "reports"
        start, end = _span(current)
        _, json_path, html_path = record_drift(
            session.store,
            session.artifacts,
            spec.name,
            report,
            folder,
            reference=dataset,
            rows=current.num_rows,
            model_version=version,
            window_start=start,
            window_end=end,
            created_at=report.created_at,
            source=CLI_SOURCE,
        )
        if html is not None:
            report.render_html(html, history=load_history(folder))
    if as_json:
        console.print_json(json.dumps(report.to_json()))
        return
    console.print(f"{current.num_rows:,} newest predictions against {escape(what)}")
    console.print(render(report))
    console.print(f"report: {escape(str(html_path))} (and {escape(json_path.name)})")


def _champion(registry: ModelRegistry) -> tuple[int | None, str]:
    """The champion's version and training dataset version (what the run records)."""
    from conveyor.monitor._project import DATASET_TAG
    from conveyor.registry import CHAMPION

    champion = registry.alias(CHAMPION)
    if champion is None:  # demoted meanwhile: training_reference found it a moment ago
        return None, "training data"
    return champion.version, champion.tags.get(DATASET_TAG, "training data")


def _only_version(table: pa.Table) -> int | None:
    """The model version that answered every row of ``table``, or None (several, or unknown)."""
    if "model_version" not in table.column_names:
        return None
    versions = set(table.column("model_version").to_pylist())
    return int(versions.pop()) if len(versions) == 1 and None not in versions else None


def _span(table: pa.Table) -> tuple[datetime | None, datetime | None]:
    """The first and last prediction's timestamps (aware), or None."""
    import pyarrow.compute as pc

    if "timestamp" not in table.column_names or table.num_rows == 0:
        return None, None
    bounds = pc.min_max(table.column("timestamp")).as_py()
    return _aware(bounds["min"]), _aware(bounds["max"])


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def raise_no_previous(rows: int) -> None:
    """The error for `--reference previous` on a log with one window only."""
    from conveyor.errors import SourceError

    raise SourceError(
        f"the prediction log holds only {rows:,} predictions, one window: nothing before it "
        "to compare with; use a smaller --window, or `--reference training`"
    )


def render(report: DriftReport) -> Table:
    """The verdict as a table's title, one row per column (drifted first)."""
    from conveyor.monitor._html import ordered

    verdict = "[bold red]drift detected[/]" if report.drifted else "[green]no dataset drift[/]"
    table = Table(
        "column",
        "kind",
        "method",
        "value",
        "threshold",
        "drifted",
        "missing ref → cur",
        title=f"{verdict}: {len(report.drifted_columns)} of {len(report.columns)} columns, "
        f"share {report.drifted_share:.0%} (threshold {report.dataset_share:.0%})",
        title_justify="left",
    )
    for column in ordered(report):
        value = "-" if column.value is None else f"{column.value:.4g}"
        table.add_row(
            escape(column.name),
            column.kind,
            column.method,
            value,
            f"{column.threshold:g}",
            "[bold red]yes[/]" if column.drifted else "no",
            f"{column.reference_missing_rate:.1%} → {column.current_missing_rate:.1%}",
        )
    return table
