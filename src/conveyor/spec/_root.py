"""The whole ``conveyor.yaml``: one :class:`Spec` made of the section models.

Checks that span sections are field validators that read the sections validated before them
(``info.data``), so they still run when an unrelated section has errors, and every problem is
reported at once.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from conveyor.spec._base import Identifier, Name, RelPath, SpecModel, raise_problems
from conveyor.spec._data import DatasetSpec, SchemaSpec
from conveyor.spec._deploy import CanaryRollout, Rollout, ServeSpec
from conveyor.spec._features import FeaturesSpec
from conveyor.spec._gate import GateSpec, gate_problems
from conveyor.spec._metrics import check_metric
from conveyor.spec._model import ModelSpec, SplitMethod
from conveyor.spec._monitor import MonitorSpec
from conveyor.spec._settings import SettingsSpec
from conveyor.spec._sources import Source
from conveyor.spec._steps import BUILTIN_STEPS, MODEL_STEPS, StepSpec, step_problems

__all__ = ["Spec"]


class Spec(SpecModel):
    """A Conveyor project: data, model, gates, rollout, serving, monitoring and custom steps.

    Every section but ``name`` is optional; sections left out mean "not used" (``dataset``,
    ``schema``, ``features``, ``model``, ``gate``) or take safe defaults (``settings``,
    ``rollout``, ``serve``, ``monitor``).
    """

    name: Name = Field(
        description="Project name: lowercase letters, digits, '-' and '_' (e.g. 'flights-delay')."
    )
    description: str = Field("", description="What the project predicts, for people.")
    settings: SettingsSpec = Field(
        default_factory=SettingsSpec,
        description="Metadata store, artifact store, MLflow and Redis locations.",
    )
    sources: dict[Identifier, Source] = Field(
        default_factory=dict,
        description="Raw data sources by name (file, sql or http); each is a table of that "
        "name in SQL queries.",
    )
    dataset: DatasetSpec | None = Field(
        None, description="The training table, built from the sources with DuckDB SQL."
    )
    schema_: SchemaSpec | None = Field(
        None, alias="schema", description="Column expectations and quality checks."
    )
    features: FeaturesSpec | None = Field(
        None, description="Feature views and the online feature store."
    )
    model: ModelSpec | None = Field(None, description="The model to train and tune.")
    gate: GateSpec | None = Field(
        None, description="Quality gates a new model must pass to become the challenger."
    )
    rollout: Rollout = Field(
        default_factory=lambda: CanaryRollout(policy="canary"),
        description="How a new model version takes traffic (canary, blue_green, ab, shadow).",
    )
    serve: ServeSpec = Field(default_factory=ServeSpec, description="The prediction server.")
    monitor: MonitorSpec = Field(
        default_factory=MonitorSpec, description="Drift, quality, alerts and retraining."
    )
    steps: dict[Name, StepSpec] = Field(
        default_factory=dict, description="Custom pipeline steps by name."
    )

    @field_validator("dataset")
    @classmethod
    def _dataset_query(cls, dataset: DatasetSpec | None, info: ValidationInfo) -> Any:
        sources = info.data.get("sources")
        if dataset is not None and dataset.query is None and sources is not None:
            if len(sources) != 1:
                found = f"{len(sources)} sources" if sources else "no sources"
                raise_problems(
                    [(("query",), f"a query is needed to build the dataset from {found}")]
                )
        return dataset

    @field_validator("features")
    @classmethod
    def _point_in_time(cls, features: FeaturesSpec | None, info: ValidationInfo) -> Any:
        dataset = info.data.get("dataset")
        if features is not None and features.views and dataset is not None:
            if dataset.time_column is None:
                raise_problems(
                    [
                        (
                            ("views",),
                            "feature views are joined point-in-time on the dataset's time; "
                            "set dataset.time_column",
                        )
                    ]
                )
        return features

    @field_validator("model")
    @classmethod
    def _time_split(cls, model: ModelSpec | None, info: ValidationInfo) -> Any:
        if model is None or model.split.method is not SplitMethod.time:
            return model
        dataset = info.data.get("dataset")
        has_dataset_time = dataset is not None and dataset.time_column is not None
        if model.split.time_column is None and not has_dataset_time and "dataset" in info.data:
            raise_problems(
                [
                    (
                        ("split", "method"),
                        "method 'time' needs a time column: set dataset.time_column "
                        "or model.split.time_column",
                    )
                ]
            )
        return model

    @field_validator("gate")
    @classmethod
    def _gate_metrics(cls, gate: GateSpec | None, info: ValidationInfo) -> Any:
        model = info.data.get("model")
        if gate is not None and model is not None:
            raise_problems(gate_problems(gate, model.task))
        return gate

    @field_validator("monitor")
    @classmethod
    def _monitor_metric(cls, monitor: MonitorSpec, info: ValidationInfo) -> Any:
        model = info.data.get("model")
        quality = monitor.quality
        if model is not None and quality is not None and quality.metric is not None:
            problem = check_metric(quality.metric, model.task)
            if problem:
                raise_problems([(("quality", "metric"), problem)])
        return monitor

    @field_validator("steps")
    @classmethod
    def _step_graph(cls, steps: dict[str, StepSpec], info: ValidationInfo) -> Any:
        builtin: dict[str, tuple[str, ...]] = {}
        if info.data.get("sources"):
            builtin.update(BUILTIN_STEPS)
            model = info.data.get("model")
            if model is not None:
                builtin.update(
                    (name, outputs)
                    for name, outputs in MODEL_STEPS.items()
                    if name != "tune" or model.tune is not None
                )
        problems: list[tuple[RelPath, str]] = step_problems(steps, builtin)
        raise_problems(problems)
        return steps
