"""Monitoring: how far live data has drifted from the data the model was trained on.

:func:`compute_drift` compares a window (an Arrow table, or Parquet files such as the
prediction log) with a reference, per column and for the whole dataset, and returns a
:class:`DriftReport` that renders as JSON and as a self-contained HTML page. numpy, scipy,
DuckDB, pyarrow and matplotlib are imported when used, not with this package.
"""

from __future__ import annotations

from conveyor.monitor._columns import LOG_COLUMNS
from conveyor.monitor._drift import compute_drift
from conveyor.monitor._inputs import DriftInput
from conveyor.monitor._project import (
    load_history,
    prediction_window,
    save_report,
    training_reference,
)
from conveyor.monitor._report import ColumnDrift, ColumnKind, DriftReport, Histogram

__all__ = [
    "LOG_COLUMNS",
    "ColumnDrift",
    "ColumnKind",
    "DriftInput",
    "DriftReport",
    "Histogram",
    "compute_drift",
    "load_history",
    "prediction_window",
    "save_report",
    "training_reference",
]
