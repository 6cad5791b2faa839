"""The monitoring loop: drift per window of served predictions, stored, reported and alerted on.

Each :meth:`MonitorLoop.tick` judges every complete window of the prediction log that no drift
run covers yet (see :mod:`conveyor.monitor._windows`): it compares the window's inputs with the
training data of the version that answered it, writes the JSON and HTML reports to the
artifact store and to ``<project>/reports/``, and records a ``drift`` monitoring run in the
metadata store (its ``summary`` holds the per-column scores the Prometheus gauges and the
retraining triggers read). The controller runs it on a thread of its own while it holds the
project's lease, so only one process monitors a project; a restarted one resumes after the
last stored window.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from conveyor.monitor._project import DATASET_TAG, load_history, save_report
from conveyor.monitor._windows import LogWindow, next_window

if TYPE_CHECKING:
    from conveyor.artifacts import ArtifactStore
    from conveyor.monitor._report import DriftReport
    from conveyor.registry import ModelRegistry
    from conveyor.spec import Spec
    from conveyor.store import MetadataStore, MonitorRunRecord

__all__ = ["DRIFT_KIND", "MonitorLoop", "drift_summary"]

logger = logging.getLogger(__name__)

DRIFT_KIND: Final = "drift"
_MAX_WINDOWS_PER_TICK: Final = 3


@dataclass(frozen=True)
class _Reference:
    path: Path
    dataset_version: str
    importance: dict[str, float] | None


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
            last = self.store.list_monitor_runs(self.project, kind=DRIFT_KIND, limit=1)
            after = last[0].window_end if last else None
            window = next_window(self.artifacts_url, size, after=after, now=self.clock())
            if window is None:
                break
            stored.append(self._judge(window))
        return stored

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
            importance=reference.importance,
        )
        json_path, html_path = save_report(report, self.reports_dir, load_history(self.reports_dir))
        refs = {
            "json": self.artifacts.put_file(json_path).digest,
            "html": self.artifacts.put_file(html_path).digest,
        }
        run = self.store.add_monitor_run(
            self.project,
            DRIFT_KIND,
            rows=window.table.num_rows,
            flagged=report.drifted,
            score=report.drifted_share,
            summary=drift_summary(report, reference.dataset_version, html_path),
            artifacts=refs,
            model_version=version,
            window_start=window.start,
            window_end=window.end,
            created_at=self.clock(),
        )
        if self._on_run is not None:
            self._on_run(run)
        return run

    def _reference(self, version: int) -> _Reference | None:
        known = self._references.get(version)
        if known is not None:
            return known
        if self._registry is None:
            self._registry = self._registry_factory()
        model = self._registry.get(version)
        dataset_id = model.tags.get(DATASET_TAG)
        if not dataset_id:
            return None
        record = self.store.get_dataset_version(dataset_id)
        path = self.artifacts.local_path(record.sha256)
        if path is None:
            path = self.artifacts.get_file(record.sha256, self._workdir / f"{record.id}.parquet")
        found = _Reference(path, record.id, None)
        self._references[version] = found
        return found


def drift_summary(report: DriftReport, dataset_version: str, html: Path) -> dict[str, Any]:
    """What a drift run keeps in the store: the verdict and each column's score."""
    columns = {
        c.name: {
            "method": c.method,
            "value": c.value if c.value is not None and math.isfinite(c.value) else None,
            "drifted": c.drifted,
            "kind": c.kind,
        }
        for c in report.columns
    }
    summary: dict[str, Any] = json.loads(
        json.dumps(
            {
                "drifted_share": report.drifted_share,
                "dataset_share": report.dataset_share,
                "drifted_columns": list(report.drifted_columns),
                "columns": columns,
                "reference": dataset_version,
                "html": str(html),
            },
            default=str,
        )
    )
    return summary
