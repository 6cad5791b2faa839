"""The model registry: a facade over MLflow 3's tracking and model registry.

Conveyor models are logged as MLflow pyfunc models (:func:`log_conveyor_model`), registered as
versions of a registered model named after the project, and promoted with aliases
(``champion``, ``challenger``), never with MLflow's deprecated stages. Every promotion and
rollback is written to the metadata store's audit log::

    client = connect("sqlite:////home/me/churn/.conveyor/mlflow.db")
    registry = ModelRegistry(client, "churn")
    registry.promote("3", reason="better AUC", actor="me", store=store)
    registry.rollback(reason="latency regression", actor="me", store=store)

MLflow is imported only when a function needs it; ``ConveyorPythonModel`` (whose class must
subclass MLflow's ``PythonModel``) is imported on first access.
"""

from __future__ import annotations

import typing as _typing

from conveyor.registry._client import connect, ensure_experiment
from conveyor.registry._flavor import log_conveyor_model
from conveyor.registry._lineage import UNKNOWN, lineage
from conveyor.registry._registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION_TAG,
    ModelRegistry,
    ModelVersionInfo,
)

if _typing.TYPE_CHECKING:
    from conveyor.registry._pyfunc import ConveyorPythonModel

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS_CHAMPION_TAG",
    "UNKNOWN",
    "ConveyorPythonModel",
    "ModelRegistry",
    "ModelVersionInfo",
    "connect",
    "ensure_experiment",
    "lineage",
    "log_conveyor_model",
]


def __getattr__(name: str) -> _typing.Any:
    if name == "ConveyorPythonModel":
        from conveyor.registry._pyfunc import ConveyorPythonModel

        return ConveyorPythonModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
