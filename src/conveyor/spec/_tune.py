"""``model.tune:`` — hyperparameter search with Optuna: trials, metric and search space."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Final, Literal, Self

from pydantic import Field, field_validator, model_validator

from conveyor.spec._base import (
    Duration,
    RelPath,
    Scalar,
    SpecModel,
    problem_error,
    raise_problems,
)
from conveyor.spec._metrics import Direction

__all__ = ["CategoricalParam", "FloatParam", "IntParam", "ParamSpace", "TuneSpec"]

_LOG_HELP: Final = "Sample on a log scale (needs low > 0)."


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    problems: list[tuple[RelPath, str]] = []
    if low >= high:
        problems.append((("low",), f"low ({low:g}) must be less than high ({high:g})"))
    if log and low <= 0:
        problems.append((("low",), f"low ({low:g}) must be greater than 0 when log is true"))
    if log and step is not None:
        problems.append((("step",), "step cannot be combined with log: true"))
    raise_problems(problems)


class FloatParam(SpecModel):
    """A float hyperparameter sampled from ``[low, high]``."""

    type: Literal["float"] = Field(description="Parameter type: 'float'.")
    low: float = Field(description="Smallest value.")
    high: float = Field(description="Largest value.")
    log: bool = Field(False, description=_LOG_HELP)
    step: float | None = Field(None, gt=0, description="Discretization step (default: none).")

    @model_validator(mode="after")
    def _valid_range(self) -> Self:
        _check_range(self.low, self.high, self.log, self.step)
        return self


class IntParam(SpecModel):
    """An integer hyperparameter sampled from ``[low, high]``."""

    type: Literal["int"] = Field(description="Parameter type: 'int'.")
    low: int = Field(description="Smallest value.")
    high: int = Field(description="Largest value.")
    log: bool = Field(False, description=_LOG_HELP)
    step: int = Field(1, ge=1, description="Step between values.")

    @model_validator(mode="after")
    def _valid_range(self) -> Self:
        # step 1 is the default, so it only conflicts with log when set to something else.
        _check_range(self.low, self.high, self.log, None if self.step == 1 else self.step)
        return self


class CategoricalParam(SpecModel):
    """A hyperparameter chosen from a list of values."""

    type: Literal["categorical"] = Field(description="Parameter type: 'categorical'.")
    choices: list[Scalar] = Field(min_length=1, description="The values to choose from.")

    @field_validator("choices")
    @classmethod
    def _distinct(cls, choices: list[Any]) -> list[Any]:
        seen: list[Any] = []
        for index, choice in enumerate(choices):
            if choice in seen:
                raise problem_error(f"{choice!r} is listed twice", (index,))
            seen.append(choice)
        return choices


ParamSpace = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]
"""The search range of one hyperparameter, selected by ``type``."""


class TuneSpec(SpecModel):
    """Hyperparameter search with Optuna."""

    n_trials: int = Field(20, ge=1, description="Number of trials (per study, over all workers).")
    timeout: Duration | None = Field(
        None, description="Stop starting new trials after this long (e.g. '30m')."
    )
    metric: str | None = Field(
        None, description="Metric to optimize (default: the task's primary metric)."
    )
    direction: Direction | None = Field(
        None, description="'maximize' or 'minimize' (default: the metric's natural direction)."
    )
    sampler: Literal["tpe", "random"] = Field("tpe", description="Optuna sampler.")
    pruner: Literal["none", "median", "hyperband"] = Field("median", description="Optuna pruner.")
    storage_url: str | None = Field(
        None,
        description="Optuna RDB storage URL shared by tuning workers on several machines "
        "(default: settings.db_url).",
    )
    cv_folds: int = Field(
        1,
        ge=1,
        le=20,
        description="Folds per trial. 1 scores each trial on the split's validation part; "
        "K > 1 averages K folds over the train and validation parts (forward-chaining folds "
        "for time splits, stratified for classification, grouped for group splits). "
        "The test part is never used for tuning.",
    )
    space: dict[str, ParamSpace] = Field(
        min_length=1, description="Search space: hyperparameter name -> range or choices."
    )

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise problem_error("expected a duration greater than 0")
        return value
