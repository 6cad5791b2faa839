"""Monitoring: how far live data has drifted from the data the model was trained on.

:func:`compute_drift` compares a window (an Arrow table, or Parquet files such as the
prediction log) with a reference, per column and for the whole dataset, and returns a
:class:`DriftReport` that renders as JSON and as a self-contained HTML page.

Live quality: :func:`ingest_labels` stores ground-truth labels next to the prediction log,
:func:`joined_predictions` joins them (by request id or a declared key, latest label wins), and
:func:`live_quality` measures a metric per model version and time window with bootstrap
intervals (:class:`QualityReport`); :func:`version_quality` is the rollout controller's view.

numpy, scipy, DuckDB, pyarrow and matplotlib are imported when used, not with this package.
"""

from __future__ import annotations

from conveyor.monitor._columns import LOG_COLUMNS
from conveyor.monitor._drift import compute_drift
from conveyor.monitor._inputs import DriftInput
from conveyor.monitor._joined import LabelMatches, joined_predictions, label_matches
from conveyor.monitor._labels import LabelBatch, ingest_labels
from conveyor.monitor._loop import MonitorLoop, drift_summary
from conveyor.monitor._project import (
    load_history,
    prediction_window,
    save_report,
    training_reference,
)
from conveyor.monitor._quality import live_quality, version_quality
from conveyor.monitor._quality_report import QualityPoint, QualityReport
from conveyor.monitor._report import ColumnDrift, ColumnKind, DriftReport, Histogram
from conveyor.monitor._retrain import RetrainDecision, decide_retrain
from conveyor.monitor._retrainer import Retrainer

__all__ = [
    "LOG_COLUMNS",
    "ColumnDrift",
    "ColumnKind",
    "DriftInput",
    "DriftReport",
    "Histogram",
    "LabelBatch",
    "LabelMatches",
    "MonitorLoop",
    "QualityPoint",
    "QualityReport",
    "RetrainDecision",
    "Retrainer",
    "compute_drift",
    "decide_retrain",
    "drift_summary",
    "ingest_labels",
    "joined_predictions",
    "label_matches",
    "live_quality",
    "load_history",
    "prediction_window",
    "save_report",
    "training_reference",
    "version_quality",
]
