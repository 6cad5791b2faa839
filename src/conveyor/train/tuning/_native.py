"""The algorithm's own evaluation metric for a tuning metric, and its values per iteration.

Optuna's pruners compare a trial's intermediate values with other trials' at the same step,
in the study's direction. Boosting libraries evaluate their own metrics each round, so the
tuning metric is passed to them as their eval metric (``roc_auc`` -> LightGBM ``auc``) and
a native metric that improves the other way than the study (a loss while maximizing ``r2``)
is negated before it is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from conveyor.spec._metrics import Direction, Task

__all__ = ["eval_metric_params", "intermediate_value", "native_metric"]

_B, _M, _R = Task.binary_classification, Task.multiclass_classification, Task.regression

_LIGHTGBM: Final[Mapping[Task, Mapping[str, str]]] = MappingProxyType(
    {
        _B: {
            "roc_auc": "auc",
            "pr_auc": "average_precision",
            "log_loss": "binary_logloss",
            "brier": "binary_logloss",
            "accuracy": "binary_error",
            "balanced_accuracy": "binary_error",
            "f1": "binary_error",
            "precision": "binary_error",
            "recall": "binary_error",
        },
        _M: {
            "roc_auc_ovr": "auc_mu",
            "log_loss": "multi_logloss",
            "accuracy": "multi_error",
            "balanced_accuracy": "multi_error",
            "f1_macro": "multi_error",
            "f1_weighted": "multi_error",
        },
        _R: {"rmse": "rmse", "mae": "l1", "mape": "mape", "median_ae": "l1", "r2": "l2"},
    }
)
_XGBOOST: Final[Mapping[Task, Mapping[str, str]]] = MappingProxyType(
    {
        _B: {
            "roc_auc": "auc",
            "pr_auc": "aucpr",
            "log_loss": "logloss",
            "brier": "logloss",
            "accuracy": "error",
            "balanced_accuracy": "error",
            "f1": "error",
            "precision": "error",
            "recall": "error",
        },
        _M: {
            "roc_auc_ovr": "auc",
            "log_loss": "mlogloss",
            "accuracy": "merror",
            "balanced_accuracy": "merror",
            "f1_macro": "merror",
            "f1_weighted": "merror",
        },
        _R: {"rmse": "rmse", "mae": "mae", "mape": "mape", "median_ae": "mae", "r2": "rmse"},
    }
)
# algorithm -> (the parameter naming its eval metric and its aliases, metrics by task)
_NATIVE: Final = {
    "lightgbm": (("metric", "metrics", "metric_types"), _LIGHTGBM),
    "xgboost": (("eval_metric",), _XGBOOST),
}
_HIGHER_IS_BETTER: Final = frozenset({"auc", "average_precision", "auc_mu", "aucpr", "ndcg", "map"})
_PREFIX: Final = "validation_"


def native_metric(algorithm: str, task: Task, metric: str) -> str | None:
    """The algorithm's eval metric closest to ``metric``, or None if it has none."""
    entry = _NATIVE.get(algorithm)
    return None if entry is None else entry[1][Task(task)].get(metric)


def eval_metric_params(
    algorithm: str, task: Task, metric: str, fixed: Mapping[str, Any]
) -> dict[str, Any]:
    """Parameters that make the algorithm evaluate ``metric``'s native counterpart.

    Empty when the algorithm has no such parameter or the fixed params already choose one.
    """
    entry = _NATIVE.get(algorithm)
    native = native_metric(algorithm, task, metric)
    if entry is None or native is None or any(key in fixed for key in entry[0]):
        return {}
    return {entry[0][0]: native}


def _direction(native: str) -> Direction:
    base = native.split("@", 1)[0]
    return Direction.maximize if base in _HIGHER_IS_BETTER else Direction.minimize


def intermediate_value(
    metrics: Mapping[str, float], preferred: str | None, direction: Direction
) -> float | None:
    """The value to report for one iteration, oriented like the study; None if there is none.

    Takes ``validation_<preferred>`` if present, else the first validation metric, and
    negates it when that metric improves the other way than ``direction``.
    """
    key = f"{_PREFIX}{preferred}"
    if key not in metrics:
        key = next((name for name in metrics if name.startswith(_PREFIX)), "")
        if not key:
            return None
    value = float(metrics[key])
    return value if _direction(key.removeprefix(_PREFIX)) is direction else -value
