"""What the closed-loop demo did, read back from the stores, as tables and one HTML page.

Everything here comes from the metadata store, the registry and the prediction log joined with
the labels: the same records ``conveyor lineage``, ``conveyor monitor ...`` and ``conveyor
rollout status`` read. The page is self-contained (plots embedded as PNG).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.monitor import QualityReport
    from conveyor.registry import ModelVersionInfo
    from conveyor.session import Session
    from conveyor.store import (
        AlertRecord,
        DatasetVersionRecord,
        DeploymentEvent,
        DeploymentRecord,
        MonitorRunRecord,
        RetrainTriggerRecord,
    )

__all__ = ["DemoSummary", "collect_summary", "render_summary_html"]


@dataclass(frozen=True)
class DemoSummary:
    """The demo's outcome.

    Attributes:
        project: The project's name.
        seconds: Wall-clock time of the whole demo.
        rows_replayed: Flights sent as traffic.
        request_errors: Requests that failed.
        alerts_received: Alerts the local webhook receiver got.
        datasets: Validated dataset versions, oldest first.
        models: Registered versions, oldest first.
        drift: Drift runs, oldest first.
        quality: Live quality per version (and wall-clock window), or None without labels.
        deployments: Rollouts with their events, oldest first.
        triggers: Retraining triggers, oldest first.
        alerts: Alerts recorded in the store.
    """

    project: str
    seconds: float
    rows_replayed: int
    request_errors: int
    alerts_received: int
    datasets: list[DatasetVersionRecord]
    models: list[ModelVersionInfo]
    drift: list[MonitorRunRecord]
    quality: QualityReport | None
    deployments: list[tuple[DeploymentRecord, list[DeploymentEvent]]]
    triggers: list[RetrainTriggerRecord]
    alerts: list[AlertRecord] = field(default_factory=list)


def collect_summary(
    session: Session,
    *,
    seconds: float,
    rows_replayed: int,
    request_errors: int,
    alerts_received: int,
    quality_window: timedelta,
) -> DemoSummary:
    """Read the demo's outcome back from the stores."""
    from conveyor.errors import SourceError
    from conveyor.monitor import joined_predictions, live_quality
    from conveyor.registry import ModelRegistry, connect

    spec = session.require_spec().spec
    name = spec.name
    store = session.store
    registry = ModelRegistry(connect(session.settings.mlflow_tracking_uri), name)
    datasets = [
        d for d in reversed(store.list_dataset_versions(limit=50)) if d.name.endswith("validated")
    ]
    deployments = [
        (record, store.list_deployment_events(record.id))
        for record in reversed(store.list_deployments(name, limit=20))
    ]
    quality = None
    if spec.model is not None:
        try:
            joined = joined_predictions(session.settings.artifacts_url)
            quality = live_quality(
                joined,
                task=spec.model.task,
                window=_windows_of(joined, quality_window),
                n_boot=100,
                min_labels=100,
            )
        except SourceError:
            quality = None
    return DemoSummary(
        project=name,
        seconds=seconds,
        rows_replayed=rows_replayed,
        request_errors=request_errors,
        alerts_received=alerts_received,
        datasets=datasets,
        models=sorted(registry.versions(), key=lambda v: v.version),
        drift=list(reversed(store.list_monitor_runs(name, kind="drift", limit=500))),
        quality=quality,
        deployments=deployments,
        triggers=list(reversed(store.list_retrain_triggers(name, limit=50))),
        alerts=store.list_alerts(name, limit=50),
    )


def _windows_of(joined: Any, longest: timedelta, count: int = 16) -> timedelta:
    """A window that cuts the log's time span in about ``count`` (at most ``longest``)."""
    import pyarrow.compute as pc

    if joined.num_rows == 0:
        return longest
    span: timedelta = pc.max(joined["timestamp"]).as_py() - pc.min(joined["timestamp"]).as_py()
    return max(min(span / count, longest), timedelta(seconds=1))


def render_summary_html(summary: DemoSummary, path: Path) -> Path:
    """Write the demo's report (self-contained HTML) to ``path``."""
    from conveyor.monitor._html import _STYLE

    sections = [
        f"<h1>Conveyor closed loop: {escape(summary.project)}</h1>",
        f'<p class="sub">{summary.rows_replayed:,} flights replayed as live traffic '
        f"({summary.request_errors} failed requests) in {summary.seconds / 60:.1f} minutes; "
        f"{summary.alerts_received} alerts received by the demo's webhook.</p>",
        "<h2>Data versions</h2>",
        _html_table(
            ["dataset version", "rows", "created"],
            [[d.id, f"{d.row_count:,}", f"{d.created_at:%H:%M:%S}"] for d in summary.datasets],
        ),
        "<h2>Model versions</h2>",
        _html_table(
            ["version", "aliases", "holdout roc_auc", "trained on", "pipeline run"],
            [_model_row(m) for m in summary.models],
        ),
        f"<h2>Drift per window of {summary.drift[0].rows:,} predictions</h2>"
        if summary.drift
        else "",
        _drift_plot(summary) if summary.drift else "",
        "<h2>Retraining triggers</h2>",
        _html_table(
            ["at", "kind", "reason", "status", "run", "version", "outcome"],
            [_trigger_row(t) for t in summary.triggers],
        ),
        "<h2>Rollouts</h2>",
        *[_deployment_html(record, events) for record, events in summary.deployments],
    ]
    if summary.quality is not None:
        from conveyor.monitor._quality_html import _plot, _table

        sections += [
            "<h2>Live quality (labels fed back a day after each flight)</h2>",
            _table(summary.quality.versions, windows=False),
        ]
        if any(p.value is not None for p in summary.quality.windows):
            sections.append(_plot(summary.quality))
    if summary.alerts:
        sections += [
            "<h2>Alerts</h2>",
            _html_table(
                ["event", "subject", "state", "first", "times"],
                [
                    [a.event, a.subject, a.state, f"{a.first_at:%H:%M:%S}", str(a.count)]
                    for a in summary.alerts
                ],
            ),
        ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Conveyor demo: {escape(summary.project)}</title><style>{_STYLE}</style>"
        f"</head><body>{''.join(sections)}</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def model_metric(model: ModelVersionInfo, name: str = "roc_auc") -> str:
    """The version's holdout metric from its registry tags, formatted."""
    value = model.tags.get(f"conveyor.metric.{name}")
    return "-" if value is None else f"{float(value):.4f}"


def _model_row(model: ModelVersionInfo) -> list[str]:
    return [
        str(model.version),
        ", ".join(sorted(model.aliases)) or "-",
        model_metric(model),
        model.tags.get("conveyor.dataset_version", "-"),
        model.tags.get("conveyor.pipeline_run", "-")[:8],
    ]


def _trigger_row(trigger: RetrainTriggerRecord) -> list[str]:
    return [
        f"{trigger.created_at:%H:%M:%S}",
        trigger.kind,
        trigger.reason,
        trigger.status,
        (trigger.run_id or "-")[:8],
        "-" if trigger.model_version is None else str(trigger.model_version),
        trigger.message or "-",
    ]


def _deployment_html(record: DeploymentRecord, events: list[DeploymentEvent]) -> str:
    title = (
        f"<h3>v{record.challenger_version or record.champion_version} "
        f"({record.policy}): {escape(str(record.state))}</h3>"
    )
    rows = [
        [
            f"{e.at:%H:%M:%S}",
            e.kind,
            f"{e.from_state or '-'} → {e.to_state}",
            ", ".join(f"v{v}: {w:g}%" for v, w in sorted(e.weights.items())),
            e.reason,
        ]
        for e in events
    ]
    return title + _html_table(["at", "event", "state", "weights", "reason"], rows)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return '<p class="sub">none</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _drift_plot(summary: DemoSummary) -> str:
    from conveyor.monitor._html import _figure, _figure_html, _png, _style

    runs = summary.drift
    figure = _figure(9, 3.2)
    ax = figure.subplots()
    x = list(range(1, len(runs) + 1))
    shares = [run.score or 0.0 for run in runs]
    colours = ["#cf222e" if run.flagged else "#0969da" for run in runs]
    ax.bar(x, shares, color=colours)
    threshold = runs[-1].summary.get("dataset_share")
    if isinstance(threshold, int | float):
        ax.axhline(threshold, color="#57606a", linestyle="--", linewidth=1)
    for trigger in summary.triggers:
        after = [i for i, run in enumerate(runs, 1) if run.created_at <= trigger.created_at]
        if after:
            ax.axvline(after[-1] + 0.5, color="#1a7f37", linewidth=2)
    versions = _version_changes(runs)
    for index, version in versions:
        ax.annotate(f"v{version}", (index, 0), xytext=(0, -28), textcoords="offset points")
    _style(ax, "Share of drifted columns per window", "drifted share")
    ax.set_xlabel("window (red: drift; green line: retraining triggered)")
    return _figure_html(_png(figure), "Drift of each window against the serving model's data")


def _version_changes(runs: list[MonitorRunRecord]) -> list[tuple[int, int]]:
    changes: list[tuple[int, int]] = []
    last: Any = None
    for index, run in enumerate(runs, 1):
        if run.model_version != last and run.model_version is not None:
            changes.append((index, run.model_version))
        last = run.model_version
    return changes
