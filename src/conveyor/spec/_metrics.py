"""Learning tasks and the metric names the spec accepts for each (with their direction)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from conveyor.spec._base import did_you_mean

__all__ = ["PRIMARY_METRIC", "TASK_METRICS", "Direction", "Task", "check_metric"]


class Task(StrEnum):
    """What the model predicts."""

    binary_classification = "binary_classification"
    multiclass_classification = "multiclass_classification"
    regression = "regression"


class Direction(StrEnum):
    """Whether higher (``maximize``) or lower (``minimize``) values of a metric are better."""

    maximize = "maximize"
    minimize = "minimize"


_MAX, _MIN = Direction.maximize, Direction.minimize

TASK_METRICS: Final[Mapping[Task, Mapping[str, Direction]]] = MappingProxyType(
    {
        Task.binary_classification: MappingProxyType(
            {
                "roc_auc": _MAX,
                "pr_auc": _MAX,
                "accuracy": _MAX,
                "balanced_accuracy": _MAX,
                "f1": _MAX,
                "precision": _MAX,
                "recall": _MAX,
                "log_loss": _MIN,
                "brier": _MIN,
                "ece": _MIN,
            }
        ),
        Task.multiclass_classification: MappingProxyType(
            {
                "accuracy": _MAX,
                "balanced_accuracy": _MAX,
                "f1_macro": _MAX,
                "f1_weighted": _MAX,
                "roc_auc_ovr": _MAX,
                "log_loss": _MIN,
                "ece": _MIN,
            }
        ),
        Task.regression: MappingProxyType(
            {"rmse": _MIN, "mae": _MIN, "mape": _MIN, "median_ae": _MIN, "r2": _MAX}
        ),
    }
)
"""Metric names known for each task, with the direction in which they improve."""

PRIMARY_METRIC: Final[Mapping[Task, str]] = MappingProxyType(
    {
        Task.binary_classification: "roc_auc",
        Task.multiclass_classification: "f1_macro",
        Task.regression: "rmse",
    }
)
"""The metric used when the spec does not name one (tuning, monitoring)."""


def check_metric(name: str, task: Task) -> str | None:
    """A problem message if ``name`` is not a metric of ``task``, else None."""
    known = TASK_METRICS[task]
    if name in known:
        return None
    return (
        f"unknown metric {name!r} for task {task}; expected one of "
        + ", ".join(repr(metric) for metric in known)
        + did_you_mean(name, known)
    )
