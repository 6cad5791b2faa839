"""How a drift report becomes a monitoring run: files in the reports folder and artifact store.

The monitoring loop (one run per window of the prediction log) and ``conveyor monitor drift``
(a manual check) both store their reports through :func:`record_drift`, so they leave the same
trail; ``summary["source"]`` tells them apart, for the loop resumes after its own windows only.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from conveyor.monitor._project import load_history, save_report

if TYPE_CHECKING:
    from conveyor.artifacts import ArtifactStore
    from conveyor.monitor._report import DriftReport
    from conveyor.store import MetadataStore, MonitorRunRecord

__all__ = ["CLI_SOURCE", "DRIFT_KIND", "LOOP_SOURCE", "drift_summary", "record_drift"]

DRIFT_KIND: Final = "drift"
LOOP_SOURCE: Final = "loop"
CLI_SOURCE: Final = "cli"
"""Values of a drift run's ``summary["source"]``: the loop's windows, or a manual check."""


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


def record_drift(
    store: MetadataStore,
    artifacts: ArtifactStore,
    project: str,
    report: DriftReport,
    reports_dir: Path,
    *,
    reference: str,
    rows: int,
    model_version: int | None,
    window_start: datetime | None,
    window_end: datetime | None,
    created_at: datetime | None = None,
    source: str = LOOP_SOURCE,
) -> tuple[MonitorRunRecord, Path, Path]:
    """Save a drift report (``reports_dir`` and artifact store) and store its ``drift`` run.

    Args:
        store: The metadata store.
        artifacts: The artifact store the JSON and HTML files are copied to.
        project: The project's name.
        report: The report.
        reports_dir: Local folder of the reports (earlier ones there are plotted).
        reference: What the window was compared with (a dataset version id, or a phrase).
        rows: Predictions judged.
        model_version: The version that answered them, if one.
        window_start: First prediction's timestamp, if known.
        window_end: Last prediction's timestamp, if known.
        created_at: When (default: now).
        source: :data:`LOOP_SOURCE` or :data:`CLI_SOURCE` (kept in ``summary["source"]``).

    Returns:
        The run, and the local JSON and HTML files.
    """
    json_path, html_path = save_report(report, reports_dir, load_history(reports_dir))
    refs = {
        "json": artifacts.put_file(json_path).digest,
        "html": artifacts.put_file(html_path).digest,
    }
    run = store.add_monitor_run(
        project,
        DRIFT_KIND,
        rows=rows,
        flagged=report.drifted,
        score=report.drifted_share,
        summary=drift_summary(report, reference, html_path) | {"source": source},
        artifacts=refs,
        model_version=model_version,
        window_start=window_start,
        window_end=window_end,
        created_at=created_at,
    )
    return run, json_path, html_path
