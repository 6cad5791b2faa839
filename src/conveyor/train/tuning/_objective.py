"""One trial: sample parameters, train on each fold, report progress, return the score."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from conveyor.errors import ConveyorError, TrainingError
from conveyor.spec._metrics import Direction, Task
from conveyor.train.tuning._native import eval_metric_params, intermediate_value, native_metric
from conveyor.train.tuning._space import suggest

if TYPE_CHECKING:
    import optuna

    from conveyor.spec._model import ModelSpec
    from conveyor.train._dataset import TrainingFrame
    from conveyor.train.algorithms import BaseAlgorithm
    from conveyor.train.tuning._folds import Fold

__all__ = [
    "ERROR_ATTR",
    "QUEUED_ATTR",
    "SURPLUS_ATTR",
    "Objective",
    "TuningData",
    "load_tuning_data",
]

ERROR_ATTR: Final = "error"
"""User attribute holding why a trial failed (set by the objective, not by a dead worker)."""
SURPLUS_ATTR: Final = "conveyor_surplus"
"""User attribute of a trial started past the budget by a race between workers (not run)."""
QUEUED_ATTR: Final = "conveyor_queued"
"""User attribute of the trials a worker queued under the budget lock."""
PID_ATTR: Final = "pid"
REPORT_ALL_FIRST: Final = 10
REPORT_EVERY: Final = 10
WORKER_ATTR: Final = "worker"


def reported(iteration: int) -> bool:
    """Whether an iteration's value is reported: the first 10, then every 10th.

    Each report is a database write and each pruning check a read, so reporting all of a
    thousand boosting rounds would cost more than the training; every trial uses the same
    steps, so pruners still compare like with like.
    """
    return iteration < REPORT_ALL_FIRST or (iteration + 1) % REPORT_EVERY == 0


class SurplusTrialError(Exception):
    """A trial another worker's trial already took the budget of; it is failed, not run."""


@dataclass(frozen=True, eq=False)
class TuningData:
    """The training frame and the folds every trial is scored on (the test part is unused)."""

    frame: TrainingFrame
    folds: list[Fold]


def load_tuning_data(dataset: Path, spec: ModelSpec, time_column: str | None) -> TuningData:
    """Read the dataset, split it as the spec says and cut the tuning folds.

    Raises:
        TrainingError: The dataset, split or folds do not fit the spec.
    """
    from conveyor.train._dataset import load_training_frame
    from conveyor.train._split import split
    from conveyor.train.tuning._folds import tuning_folds

    frame = load_training_frame(Path(dataset), spec, time_column=time_column)
    parts = split(frame, spec.split, task=spec.task)
    k = 1 if spec.tune is None else spec.tune.cv_folds
    return TuningData(frame, tuning_folds(frame, parts, spec, k))


class Objective:
    """Optuna objective: ``model.params`` merged with the trial's sampled parameters.

    With one fold, the algorithm reports its native eval metric per boosting round / epoch
    as the trial's intermediate values (so pruners can stop it early; rounds 0-9 and then
    every 10th, see :func:`reported`); with several folds
    the running mean of the fold scores is reported after each fold. A failure is recorded
    as the trial's ``error`` user attribute and re-raised, so Optuna marks the trial failed.
    """

    def __init__(
        self,
        spec: ModelSpec,
        data: TuningData,
        *,
        metric: str,
        direction: Direction,
        n_jobs: int | None,
        worker: int = 0,
    ) -> None:
        if spec.tune is None:
            raise TrainingError("model.tune is not set; add a tune section with a search space")
        self.spec = spec
        self.space = spec.tune.space
        self.data = data
        self.metric = metric
        self.direction = direction
        self.n_jobs = n_jobs
        self.worker = worker
        self.native = native_metric(spec.algorithm, spec.task, metric)

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        if not trial.user_attrs.get(QUEUED_ATTR):
            # Every trial a worker runs was queued under the budget lock; Optuna created
            # this one because another worker took the queued one first.
            trial.set_user_attr(SURPLUS_ATTR, True)
            raise SurplusTrialError(f"trial {trial.number} is beyond the trial budget")
        trial.set_user_attr(PID_ATTR, os.getpid())
        trial.set_user_attr(WORKER_ATTR, self.worker)
        try:
            return self._score(trial)
        except optuna.TrialPruned:
            raise
        except Exception as err:
            message = str(err) if isinstance(err, ConveyorError) else f"{type(err).__name__}: {err}"
            trial.set_user_attr(ERROR_ATTR, message)
            raise

    def _score(self, trial: optuna.Trial) -> float:
        import optuna

        params = {**self.spec.params, **suggest(trial, self.space)}
        folds = self.data.folds
        if len(folds) == 1:
            train, valid = folds[0]
            params |= eval_metric_params(
                self.spec.algorithm, self.spec.task, self.metric, self.spec.params
            )
            model = self._fit(params, train, valid, trial)
            return self._measure(model, valid)
        scores: list[float] = []
        for index, (train, valid) in enumerate(folds):
            scores.append(self._measure(self._fit(params, train, None, None), valid))
            trial.report(math.fsum(scores) / len(scores), index)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after fold {index + 1} of {len(folds)}")
        return math.fsum(scores) / len(scores)

    def _fit(
        self, params: dict[str, Any], train: Any, valid: Any, trial: optuna.Trial | None
    ) -> BaseAlgorithm:
        import optuna

        from conveyor.train.algorithms import build_algorithm

        frame = self.data.frame
        model = build_algorithm(
            self.spec.model_copy(update={"params": params}),
            frame.feature_schema,
            n_jobs=self.n_jobs,
        )

        if valid is None:
            return model.fit(frame.X.iloc[train], frame.y[train])

        def on_iteration(iteration: int, metrics: dict[str, float]) -> None:
            if trial is None or not reported(iteration):
                return
            value = intermediate_value(metrics, self.native, self.direction)
            if value is None or not math.isfinite(value):
                return
            trial.report(value, iteration)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at iteration {iteration}")

        return model.fit(
            frame.X.iloc[train],
            frame.y[train],
            X_valid=frame.X.iloc[valid],
            y_valid=frame.y[valid],
            on_iteration=on_iteration,
        )

    def _measure(self, model: BaseAlgorithm, rows: Any) -> float:
        from conveyor.train.evaluation import evaluate

        X, y = self.data.frame.X.iloc[rows], self.data.frame.y[rows]
        inputs: dict[str, Any] = {}
        if Task(self.spec.task) is Task.regression:
            inputs["y_pred"] = model.predict(X)
        else:
            inputs["classes"] = model.classes_
            try:
                inputs["y_score"] = model.predict_proba(X)
            except TrainingError:  # an estimator without probabilities
                inputs["y_pred"] = model.predict(X)
        try:
            evaluation = evaluate(self.spec.task, y, n_bootstrap=0, metrics=[self.metric], **inputs)
            return float(evaluation.metric(self.metric).value)
        except (KeyError, ValueError) as err:
            reason = err.args[0] if err.args else err
            raise TrainingError(
                f"cannot compute {self.metric} on {len(y)} validation rows: {reason}"
            ) from err
