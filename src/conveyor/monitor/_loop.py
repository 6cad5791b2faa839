"""The monitoring loop: drift per window of served predictions, stored, reported and alerted on.

Each :meth:`MonitorLoop.tick` judges every complete window of the prediction log that no drift
run covers yet (see :mod:`conveyor.monitor._windows`): it compares the window's inputs with the
training data of the version that answered it, writes the JSON and HTML reports to the
artifact store and to ``<project>/reports/``, and records a ``drift`` monitoring run in the
metadata store (its ``summary`` holds the per-column scores the Prometheus gauges and the
retraining triggers read). The controller runs it on a thread of its own while it holds the
project's lease, so only one process monitors a project; a restarted one resumes after the
last window it stored (``conveyor monitor drift`` records its runs the same way, through
:func:`record_drift`, marked ``summary["source"] == "cli"``, and the loop does not resume after
those). When labels arrive it also stores a ``quality`` run with its reports (see
:mod:`conveyor.monitor._loop_quality`).
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from conveyor.monitor._loop_drift import (
    CLI_SOURCE,
    DRIFT_KIND,
    LOOP_SOURCE,
    drift_summary,
    record_drift,
)
from conveyor.monitor._loop_quality import QUALITY_KIND, record_quality
from conveyor.monitor._project import DATASET_TAG
from conveyor.monitor._windows import LogWindow, next_window

if TYPE_CHECKING:
    from conveyor.artifacts import ArtifactStore
    from conveyor.registry import ModelRegistry
    from conveyor.spec import Spec
    from conveyor.store import MetadataStore, MonitorRunRecord

__all__ = [
    "CLI_SOURCE",
    "DRIFT_KIND",
    "LOOP_SOURCE",
    "QUALITY_KIND",
    "MonitorLoop",
    "drift_summary",
    "record_drift",
]

logger = logging.getLogger(__name__)

QUALITY_EVERY_S: Final = 10.0
"""Least seconds between two live-quality runs (each joins the log with every label)."""
SERVING_WINDOW: Final = timedelta(minutes=5)
"""Serving statistics the error-rate and latency alerts judge."""
_MAX_WINDOWS_PER_TICK: Final = 3
_RESUME_PAGES: Final = (20, 1000)


@dataclass(frozen=True)
class _Reference:
    path: Path
    dataset_version: str


class MonitorLoop:
    """Judges the prediction log window by window for one project.

    Args:
        store: The metadata store.
        artifacts: The artifact store (reports are kept there; the log is read from its URL).
        artifacts_url: Where the prediction log lives (``<artifacts_url>/predictions``).
        spec: The project's spec (``monitor:``).
        registry_factory: The project's model registry, created on first need.
        reports_dir: Local folder for the HTML and JSON reports.
        clock: Returns the current time (aware).
        on_run: Called with every stored monitoring run (alerts, for instance).
    """

    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        artifacts_url: str,
        spec: Spec,
        registry_factory: Callable[[], ModelRegistry],
        reports_dir: Path,
        clock: Callable[[], datetime],
        on_run: Callable[[MonitorRunRecord], None] | None = None,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.artifacts_url = artifacts_url
        self.spec = spec
        self.project = spec.name
        self.reports_dir = reports_dir
        self.clock = clock
        self._registry_factory = registry_factory
        self._registry: ModelRegistry | None = None
        self._on_run = on_run
        self._references: dict[int, _Reference] = {}
        self._workdir = Path(tempfile.mkdtemp(prefix="conveyor-monitor-"))
        self._labels_seen: tuple[int, float] | None = None
        self._quality_at = 0.0

    @classmethod
    def for_project(
        cls,
        store: MetadataStore,
        spec: Spec,
        *,
        artifacts_url: str,
        tracking_uri: str,
        reports_dir: Path,
        clock: Callable[[], datetime] | None = None,
    ) -> MonitorLoop:
        """The loop of a project, given its settings (registry and artifacts opened here)."""
        from conveyor.artifacts import ArtifactStore

        def registry() -> ModelRegistry:
            from conveyor.registry import ModelRegistry, connect

            return ModelRegistry(connect(tracking_uri), spec.name)

        return cls(
            store,
            ArtifactStore(artifacts_url),
            artifacts_url,
            spec,
            registry,
            reports_dir,
            clock or _utcnow,
        )

    @property
    def lease_name(self) -> str:
        """``monitor:<project>``: one process monitors a project at a time."""
        return f"monitor:{self.project}"

    def run(
        self, stop: threading.Event, *, holder: str, interval_s: float = 5.0, ttl_s: float = 60.0
    ) -> None:
        """Tick every ``interval_s`` seconds while holding the lease, until ``stop`` is set.

        Errors of a tick are logged (once per distinct message) and the loop goes on.
        """
        last_error = ""
        try:
            while not stop.is_set():
                try:
                    if self.store.acquire_lease(self.lease_name, holder, ttl_s):
                        for run in self.tick():
                            logger.info("monitoring run %s: %s", run.kind, run.id)
                    last_error = ""
                except Exception as err:  # the loop must outlive any one tick
                    text = f"{type(err).__name__}: {err}"
                    if text != last_error:
                        logger.warning("monitoring tick failed: %s", text)
                    last_error = text
                stop.wait(interval_s)
        finally:
            try:
                self.store.release_lease(self.lease_name, holder)
            except Exception as err:  # best effort on the way out
                logger.warning("could not release %s: %s", self.lease_name, err)

    def tick(self) -> list[MonitorRunRecord]:
        """Judge up to a few complete windows not judged yet; return the runs stored."""
        stored: list[MonitorRunRecord] = []
        size = self.spec.monitor.drift.window
        for _ in range(_MAX_WINDOWS_PER_TICK):
            after = self._last_window_end()
            window = next_window(self.artifacts_url, size, after=after, now=self.clock())
            if window is None:
                break
            stored.append(self._judge(window))
        quality = self._quality()
        if quality is not None:
            stored.append(quality)
        self._alerts(stored)
        return stored

    # -- live quality --------------------------------------------------------------------

    def _quality(self) -> MonitorRunRecord | None:
        """The champion's live metric over the last ``monitor.quality.window``, with reports.

        Computed when new labels arrived, at most every :data:`QUALITY_EVERY_S` seconds (see
        :func:`~conveyor.monitor._loop_quality.record_quality`).
        """
        settings = self.spec.monitor.quality
        model = self.spec.model
        if settings is None or model is None:
            return None
        seen = _labels_state(self.artifacts_url)
        if seen is None or seen == self._labels_seen:
            return None
        if time.monotonic() - self._quality_at < QUALITY_EVERY_S:
            return None
        from conveyor.registry import CHAMPION

        self._quality_at = time.monotonic()
        self._labels_seen = seen
        champion = self._registry_now().alias(CHAMPION)
        if champion is None:
            return None
        run = record_quality(
            self.store,
            self.artifacts,
            artifacts_url=self.artifacts_url,
            project=self.project,
            task=model.task,
            settings=settings,
            champion=champion,
            reports_dir=self.reports_dir,
            now=self.clock(),
        )
        if run is not None and self._on_run is not None:
            self._on_run(run)
        return run

    # -- alerts --------------------------------------------------------------------------

    def _alerts(self, stored: list[MonitorRunRecord]) -> None:
        """Judge the spec's alert rules on the newest runs and serving statistics."""
        rules = self.spec.monitor.alerts
        if not rules:
            return
        from conveyor.monitor._alerting import (
            AlertObservation,
            QualityObservation,
            evaluate_alerts,
            serving_observation,
        )

        now = self.clock()
        drift = next((r for r in reversed(stored) if r.kind == DRIFT_KIND), None)
        quality_run = next((r for r in reversed(stored) if r.kind == QUALITY_KIND), None)
        quality = None
        if quality_run is not None:
            summary = quality_run.summary
            quality = QualityObservation(
                metric=str(summary["metric"]),
                value=quality_run.score,
                baseline=summary.get("baseline"),
                model_version=quality_run.model_version,
                higher_is_better=bool(summary.get("higher_is_better", True)),
            )
        serving = serving_observation(self.store, self.project, now - SERVING_WINDOW)
        recent: tuple[MonitorRunRecord, ...] = ()
        if drift is not None:  # for the rules' clear_after: the windows before this one
            recent = tuple(self.store.list_monitor_runs(self.project, kind=DRIFT_KIND, limit=10))
        evaluate_alerts(
            self.store,
            self.project,
            rules,
            AlertObservation(
                self.project,
                now,
                drift=drift,
                quality=quality,
                serving=serving,
                recent_drift=recent,
            ),
        )

    def _registry_now(self) -> ModelRegistry:
        if self._registry is None:
            self._registry = self._registry_factory()
        return self._registry

    def _judge(self, window: LogWindow) -> MonitorRunRecord:
        from conveyor.monitor._drift import compute_drift

        version = window.model_version
        reference = self._reference(version) if version is not None else None
        if reference is None:
            raise LookupError(f"no training data is known for model version {version}")
        report = compute_drift(
            reference.path,
            window.table,
            spec=self.spec.monitor.drift,
            current_prefix="in_",
        )
        run, _, _ = record_drift(
            self.store,
            self.artifacts,
            self.project,
            report,
            self.reports_dir,
            reference=reference.dataset_version,
            rows=window.table.num_rows,
            model_version=version,
            window_start=window.start,
            window_end=window.end,
            created_at=self.clock(),
        )
        if self._on_run is not None:
            self._on_run(run)
        return run

    def _last_window_end(self) -> datetime | None:
        """End of the newest window the loop judged (manual `monitor drift` runs skipped)."""
        for limit in _RESUME_PAGES:
            runs = self.store.list_monitor_runs(self.project, kind=DRIFT_KIND, limit=limit)
            for run in runs:
                if run.summary.get("source", LOOP_SOURCE) == LOOP_SOURCE:
                    return run.window_end
            if len(runs) < limit:
                break
        return None

    def _reference(self, version: int) -> _Reference | None:
        known = self._references.get(version)
        if known is not None:
            return known
        model = self._registry_now().get(version)
        dataset_id = model.tags.get(DATASET_TAG)
        if not dataset_id:
            return None
        record = self.store.get_dataset_version(dataset_id)
        path = self.artifacts.local_path(record.sha256)
        if path is None:
            path = self.artifacts.get_file(record.sha256, self._workdir / f"{record.id}.parquet")
        found = _Reference(path, record.id)
        self._references[version] = found
        return found


def _labels_state(artifacts_url: str) -> tuple[int, float] | None:
    """How many label files there are and the newest one's time (local stores), or None."""
    folder = Path(f"{artifacts_url.rstrip('/')}/labels")
    if "://" in artifacts_url:
        return (0, time.time())  # a remote store: judge at most every QUALITY_EVERY_S
    files = list(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return None
    return len(files), max(f.stat().st_mtime for f in files)


def _utcnow() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
