"""Prometheus gauges of the latest monitoring results: drift scores and live quality.

The server's parent reads them from the metadata store with its deployment follower (two
indexed queries every ``monitor_seconds``, 10 s by default) and sends every worker a
:class:`MonitorSnapshot` when they changed; each worker's ``/metrics`` renders the snapshot it
holds through :class:`MonitorGauges`, a custom collector. So workers never touch the store,
the request path is untouched, and every worker reports the same values (in multiprocess mode
as with one worker). A series that disappears from the newest run disappears from
``/metrics`` too, which memory-mapped multiprocess gauges could not do. Gauges (labels in
braces)::

    conveyor_drift_share                                    drifted share of the newest window
    conveyor_drift_detected                                 1 if that window drifted, else 0
    conveyor_drift_score{column,method}                     each column's statistic
    conveyor_live_quality{model_version,metric}             quality on labelled predictions
    conveyor_live_quality_labels{model_version}             labelled predictions it used
    conveyor_monitor_run_timestamp_seconds{kind}            when the newest run was recorded

The drift run's ``summary`` is ``{"columns": {name: {"method", "value", "drifted"}},
"drifted_share"}``; the quality run's is ``{"metric", "versions": {version: {"value",
"n_labelled"}}}``. Values that are missing or not finite numbers are left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from conveyor.store import MetadataStore, MonitorRunRecord

__all__ = ["MonitorGauges", "MonitorSnapshot", "read_monitor_snapshot"]


@dataclass(frozen=True)
class MonitorSnapshot:
    """The gauges' values; picklable (sent from the server's parent to its workers).

    Attributes:
        drift_share: Drifted share of the newest drift window.
        drift_detected: Whether that window counted as drifted.
        drift_scores: ``(column, method, value)`` of that window.
        quality: ``(model_version, metric, value, n_labelled)`` of the newest quality run.
        run_times: ``(kind, unix seconds)`` of the newest run of each kind.
    """

    drift_share: float | None = None
    drift_detected: bool | None = None
    drift_scores: tuple[tuple[str, str, float], ...] = ()
    quality: tuple[tuple[str, str, float | None, int], ...] = ()
    run_times: tuple[tuple[str, float], ...] = ()


def read_monitor_snapshot(store: MetadataStore, project: str) -> MonitorSnapshot:
    """The values of the project's newest drift and quality runs (two indexed queries)."""
    drift, quality = (
        next(iter(store.list_monitor_runs(project, kind=kind, limit=1)), None)
        for kind in ("drift", "quality")
    )
    times = tuple(
        (run.kind, run.created_at.timestamp()) for run in (drift, quality) if run is not None
    )
    return MonitorSnapshot(**_drift(drift), quality=_quality(quality), run_times=times)


def _drift(run: MonitorRunRecord | None) -> dict[str, Any]:
    if run is None:
        return {}
    share = _number(run.score)
    if share is None:
        share = _number(run.summary.get("drifted_share"))
    scores = []
    for column, entry in _mapping(run.summary.get("columns")).items():
        entry = _mapping(entry)
        value = _number(entry.get("value"))
        if value is not None:
            scores.append((str(column), str(entry.get("method", "")), value))
    return {"drift_share": share, "drift_detected": run.flagged, "drift_scores": tuple(scores)}


def _quality(run: MonitorRunRecord | None) -> tuple[tuple[str, str, float | None, int], ...]:
    if run is None:
        return ()
    metric = str(run.summary.get("metric", ""))
    rows = []
    for version, entry in _mapping(run.summary.get("versions")).items():
        entry = _mapping(entry)
        labelled = _number(entry.get("n_labelled"))
        rows.append((str(version), metric, _number(entry.get("value")), int(labelled or 0)))
    return tuple(sorted(rows))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


class MonitorGauges:
    """A prometheus_client collector rendering the snapshot it holds.

    :attr:`snapshot` is replaced whole (one attribute assignment), so a rendering in another
    thread sees either the old values or the new ones, never a mix.
    """

    def __init__(self) -> None:
        self.snapshot = MonitorSnapshot()

    def describe(self) -> list[Metric]:
        """Nothing: the collector's series vary, and registering it must not collect."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The gauges of :attr:`snapshot` (families without values are left out)."""
        from prometheus_client.core import GaugeMetricFamily

        snap = self.snapshot
        if snap.drift_share is not None:
            yield GaugeMetricFamily(
                "conveyor_drift_share",
                "Drifted share of the columns in the newest drift window.",
                value=snap.drift_share,
            )
        if snap.drift_detected is not None:
            yield GaugeMetricFamily(
                "conveyor_drift_detected",
                "1 if the newest drift window counted as drifted, else 0.",
                value=float(snap.drift_detected),
            )
        if snap.drift_scores:
            scores = GaugeMetricFamily(
                "conveyor_drift_score",
                "Drift statistic of each column in the newest drift window.",
                labels=("column", "method"),
            )
            for column, method, value in snap.drift_scores:
                scores.add_metric((column, method), value)
            yield scores
        if snap.quality:
            quality = GaugeMetricFamily(
                "conveyor_live_quality",
                "Quality metric of each model version on its labelled live predictions.",
                labels=("model_version", "metric"),
            )
            labels = GaugeMetricFamily(
                "conveyor_live_quality_labels",
                "Labelled live predictions behind conveyor_live_quality.",
                labels=("model_version",),
            )
            for version, metric, live, labelled in snap.quality:
                if live is not None:
                    quality.add_metric((version, metric), live)
                labels.add_metric((version,), float(labelled))
            yield quality
            yield labels
        if snap.run_times:
            times = GaugeMetricFamily(
                "conveyor_monitor_run_timestamp_seconds",
                "When the newest monitoring run of each kind was recorded (unix time).",
                labels=("kind",),
            )
            for kind, seconds in snap.run_times:
                times.add_metric((kind,), seconds)
            yield times
