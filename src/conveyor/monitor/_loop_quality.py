"""The monitoring loop's live-quality pass: the champion's metric, stored with its reports.

One join of the prediction log with the labels (the last :data:`QUALITY_HISTORY_WINDOWS`
windows of ``monitor.quality.window``) gives both the run's headline (the champion's metric over
the last window, no interval, as the rollout controller measures it) and the report (every
version per window with bootstrap intervals), so one pass costs one join; the resamples shrink
as labelled rows grow (:func:`bootstrap_size`), so a pass stays near a second on a day of busy
traffic. The report is written as ``<reports>/quality-<utc>.json`` and ``.html`` and to the
artifact store; the run's ``artifacts`` name their digests.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from conveyor.artifacts import ArtifactStore
    from conveyor.monitor._quality_report import QualityReport
    from conveyor.registry import ModelVersionInfo
    from conveyor.spec import QualitySpec, Task
    from conveyor.store import MetadataStore, MonitorRunRecord

__all__ = [
    "QUALITY_BOOTSTRAP",
    "QUALITY_HISTORY_WINDOWS",
    "QUALITY_KIND",
    "bootstrap_size",
    "record_quality",
    "save_quality_report",
]

QUALITY_KIND: Final = "quality"
QUALITY_HISTORY_WINDOWS: Final = 24
"""Windows of ``monitor.quality.window`` a quality report plots (one day for hourly windows)."""
QUALITY_BOOTSTRAP: Final = 100
"""Resamples per report cell, at most (a fair percentile interval at a bounded cost)."""
_BOOTSTRAP_ROWS: Final = 4_000_000
"""Labelled rows times resamples a report may spend (each row is in two cells: overall and its
window); past it fewer resamples are drawn, down to :data:`_MIN_BOOTSTRAP`. About a second."""
_MIN_BOOTSTRAP: Final = 20


def record_quality(
    store: MetadataStore,
    artifacts: ArtifactStore,
    *,
    artifacts_url: str,
    project: str,
    task: Task,
    settings: QualitySpec,
    champion: ModelVersionInfo,
    reports_dir: Path,
    now: datetime,
) -> MonitorRunRecord | None:
    """Measure the champion's live metric and store a ``quality`` run with its reports.

    The run is flagged when the metric over the last ``settings.window`` is
    ``settings.max_drop`` worse than the champion's holdout value at training time.

    Returns:
        The run, or None when the champion has no labelled prediction in the last window.

    Raises:
        SourceError: The log cannot be read, or has no column for ``settings.key``.
        ArtifactError: The labels cannot be read, or the reports cannot be stored.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from conveyor.monitor._joined import has_predictions, joined_predictions
    from conveyor.monitor._quality import live_quality
    from conveyor.spec import PRIMARY_METRIC, TASK_METRICS, Direction

    if not has_predictions(artifacts_url):
        return None
    metric = settings.metric or PRIMARY_METRIC[task]
    since = now - settings.window
    joined = joined_predictions(
        artifacts_url,
        key=settings.key,
        since=now - settings.window * QUALITY_HISTORY_WINDOWS,
        include_shadow=True,
    )
    stamps = joined.column("timestamp")
    recent = joined.filter(
        pc.and_(
            pc.and_(
                pc.greater_equal(stamps, pa.scalar(since, type=stamps.type)),
                pc.equal(joined.column("model_version"), champion.version),
            ),
            pc.invert(joined.column("shadow")),
        )
    )
    headline = live_quality(
        recent, task=task, metric=metric, n_boot=0, min_labels=settings.min_labels, now=now
    ).version(champion.version)
    if headline is None or headline.n_labelled == 0:
        return None
    labelled = pc.or_(
        pc.is_valid(joined.column("label")), pc.is_valid(joined.column("label_class"))
    )
    n_boot = bootstrap_size(int(pc.sum(labelled).as_py() or 0))
    report = live_quality(
        joined,
        task=task,
        metric=metric,
        window=settings.window,
        n_boot=n_boot,
        min_labels=settings.min_labels,
        now=now,
    )
    json_path, html_path = save_quality_report(report, reports_dir)
    refs = {
        "json": artifacts.put_file(json_path).digest,
        "html": artifacts.put_file(html_path).digest,
    }
    baseline = champion.metrics.get(metric)
    higher = TASK_METRICS[task][metric] == Direction.maximize
    value = headline.value
    drop = None
    if value is not None and baseline is not None:
        drop = baseline - value if higher else value - baseline
    return store.add_monitor_run(
        project,
        QUALITY_KIND,
        rows=headline.n_labelled,
        flagged=drop is not None and drop >= settings.max_drop,
        score=value,
        summary={
            "metric": metric,
            "higher_is_better": higher,
            "versions": {
                str(champion.version): {"value": value, "n_labelled": headline.n_labelled}
            },
            "baseline": baseline,
            "drop": drop,
            "max_drop": settings.max_drop,
            "since": since.isoformat(),
            "bootstrap": n_boot,
            "html": str(html_path),
        },
        artifacts=refs,
        model_version=champion.version,
        window_start=since,
        window_end=now,
        created_at=now,
    )


def bootstrap_size(labelled: int) -> int:
    """Resamples per cell of a report over ``labelled`` rows (see :data:`_BOOTSTRAP_ROWS`)."""
    budget = _BOOTSTRAP_ROWS // max(2 * labelled, 1)
    return max(_MIN_BOOTSTRAP, min(QUALITY_BOOTSTRAP, budget))


def save_quality_report(report: QualityReport, folder: Path) -> tuple[Path, Path]:
    """Write ``quality-<utc>.json`` and ``.html`` into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = report.created_at.strftime("%Y%m%dT%H%M%S%fZ")
    json_path = folder / f"quality-{stamp}.json"
    tmp = json_path.with_suffix(".json.part")
    tmp.write_text(json.dumps(report.to_json(), indent=1, allow_nan=False), encoding="utf-8")
    os.replace(tmp, json_path)
    return json_path, report.render_html(folder / f"quality-{stamp}.html")
