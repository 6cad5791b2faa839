"""``model:`` — what to learn: task, target, features, split and algorithm."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Final, Self

from pydantic import Field, field_validator, model_validator

from conveyor.spec._base import RelPath, SpecModel, did_you_mean, problem_error, raise_problems
from conveyor.spec._metrics import TASK_METRICS, Direction, Task, check_metric
from conveyor.spec._tune import TuneSpec

__all__ = ["ALGORITHMS", "FeatureSelection", "ModelSpec", "SplitMethod", "SplitSpec"]

ALGORITHMS: Final = ("lightgbm", "xgboost", "torch_mlp")
"""Built-in algorithms; any scikit-learn-style estimator is ``sklearn:<module.Class>``."""
_SKLEARN_RE: Final = re.compile(r"^sklearn:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")


class FeatureSelection(SpecModel):
    """Which dataset columns the model sees."""

    include: list[str] | None = Field(
        None, description="Only these columns (default: every column but the target)."
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Columns never used as features (leaky columns, identifiers).",
    )

    @model_validator(mode="after")
    def _disjoint(self) -> Self:
        both = set(self.include or ()) & set(self.exclude)
        raise_problems(
            [
                (("exclude", index), f"{column!r} is both included and excluded")
                for index, column in enumerate(self.exclude)
                if column in both
            ]
        )
        return self


class SplitMethod(StrEnum):
    """How rows are split into train and test parts."""

    random = "random"
    time = "time"
    group = "group"


class SplitSpec(SpecModel):
    """How the dataset is split for training, tuning and evaluation."""

    method: SplitMethod | None = Field(
        None,
        description="'random' (stratified for classification), 'time' (test on the latest rows) "
        "or 'group' (no group appears in both parts). Default: 'time' when the dataset has a "
        "time column, else 'random'.",
    )
    test_fraction: float = Field(0.2, gt=0, lt=1, description="Share of rows held out for test.")
    validation_fraction: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Share of the training part held out for tuning and early stopping.",
    )
    time_column: str | None = Field(
        None, description="Time column for method 'time' (default: dataset.time_column)."
    )
    group_column: str | None = Field(None, description="Group column for method 'group'.")
    seed: int = Field(42, description="Random seed of the split and of training.")

    @model_validator(mode="after")
    def _columns(self) -> Self:
        if self.method is SplitMethod.group and self.group_column is None:
            raise problem_error("method 'group' needs group_column", ("method",))
        if self.group_column is not None and self.method is not SplitMethod.group:
            raise problem_error(
                f"group_column is only used with method 'group' (method is {self.method})",
                ("group_column",),
            )
        return self


class ModelSpec(SpecModel):
    """The model to train: task, target, features, split, algorithm and tuning."""

    task: Task = Field(
        description="binary_classification, multiclass_classification or regression."
    )
    target: str = Field(min_length=1, description="Column to predict.")
    features: FeatureSelection = Field(
        default_factory=FeatureSelection, description="Which columns are features."
    )
    split: SplitSpec = Field(default_factory=SplitSpec, description="Train/test split.")
    algorithm: str = Field(
        "lightgbm",
        description="'lightgbm', 'xgboost', 'torch_mlp', or 'sklearn:<module.Class>' "
        "for any scikit-learn-compatible estimator.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Fixed hyperparameters passed to the algorithm."
    )
    tune: TuneSpec | None = Field(None, description="Hyperparameter search (default: none).")
    slices: list[str] = Field(
        default_factory=list,
        description="Columns whose values are evaluated separately (per-slice metrics).",
    )
    intended_use: str = Field(
        "",
        description="What the model is for and what it must not be used for (model card).",
    )

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, value: str) -> str:
        if value in ALGORITHMS or _SKLEARN_RE.fullmatch(value):
            return value
        raise problem_error(
            "expected 'lightgbm', 'xgboost', 'torch_mlp' or 'sklearn:<module.Class>' "
            f"(e.g. 'sklearn:sklearn.linear_model.LogisticRegression'), found {value!r}"
            + did_you_mean(value, ALGORITHMS)
        )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[RelPath, str]] = []
        for index, column in enumerate(self.features.exclude):
            if column == self.target:
                problems.append(
                    (
                        ("features", "exclude", index),
                        f"{column!r} is the target; the target is never a feature, "
                        "so it must not be listed in exclude",
                    )
                )
        for index, column in enumerate(self.features.include or ()):
            if column == self.target:
                problems.append(
                    (("features", "include", index), f"{column!r} is the target, not a feature")
                )
        if self.tune is not None and self.tune.metric is not None:
            problem = check_metric(self.tune.metric, self.task)
            if problem:
                problems.append((("tune", "metric"), problem))
            elif self.tune.direction is not None:
                natural = TASK_METRICS[self.task][self.tune.metric]
                if self.tune.direction is not natural:
                    problems.append(
                        (
                            ("tune", "direction"),
                            f"{self.tune.metric} is better when "
                            f"{'higher' if natural is Direction.maximize else 'lower'}; "
                            f"use direction: {natural} or leave direction out",
                        )
                    )
        raise_problems(problems)
        return self
