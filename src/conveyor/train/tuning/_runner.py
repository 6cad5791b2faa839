"""What one tuning worker does: load the data, join the study, run trials within the budget."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from conveyor.spec._metrics import Direction

if TYPE_CHECKING:
    import optuna

    from conveyor.spec._model import ModelSpec
    from conveyor.train.tuning._budget import Callback
    from conveyor.train.tuning._tracking import TrialTracking

__all__ = ["WorkerJob", "make_pruner", "make_sampler", "run_trials"]

MEDIAN_STARTUP_TRIALS: Final = 5
"""The median pruner prunes nothing until this many trials have finished."""
MEDIAN_WARMUP_ITERATIONS: Final = 10
"""... nor before this many boosting rounds / epochs of a trial (with ``cv_folds == 1``)."""
MEDIAN_WARMUP_FOLDS: Final = 1
"""... nor before the second fold's score (with ``cv_folds > 1``)."""
HYPERBAND_REDUCTION: Final = 3
_WORKER_SEED_STRIDE: Final = 7919


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker process needs (picklable, sent to ``spawn``-ed processes).

    Attributes:
        seed: The sampler's seed for worker 0; worker ``i`` adds ``i * 7919`` so workers do
            not sample the same points.
        deadline: ``time.time()`` after which no trial is started, or None.
    """

    dataset: Path
    model_spec: ModelSpec
    time_column: str | None
    storage_url: str
    study_name: str
    metric: str
    direction: Direction
    n_trials: int
    n_jobs: int
    seed: int
    deadline: float | None
    tracking: TrialTracking | None = None
    worker: int = 0


def make_sampler(kind: str, seed: int) -> optuna.samplers.BaseSampler:
    """The spec's sampler (``tpe`` or ``random``), seeded."""
    import optuna

    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(kind: str, cv_folds: int) -> optuna.pruners.BasePruner:
    """The spec's pruner; its steps are boosting rounds, or folds when ``cv_folds > 1``.

    ``median``: ``MedianPruner(n_startup_trials=5, n_warmup_steps=10)`` (1 with folds).
    ``hyperband``: ``HyperbandPruner(min_resource=1, reduction_factor=3)`` with
    ``max_resource`` the number of folds, or estimated from the first trial's rounds.
    """
    import optuna

    if kind == "median":
        warmup = MEDIAN_WARMUP_FOLDS if cv_folds > 1 else MEDIAN_WARMUP_ITERATIONS
        return optuna.pruners.MedianPruner(
            n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=warmup
        )
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1,
            max_resource=cv_folds if cv_folds > 1 else "auto",
            reduction_factor=HYPERBAND_REDUCTION,
        )
    return optuna.pruners.NopPruner()


def run_trials(job: WorkerJob, after_trial: Callback | None = None) -> None:
    """Load the data, join the study and run trials until the budget or deadline is reached.

    Raises:
        TrainingError: The dataset does not fit the spec (target, split, folds).
        BackendUnavailableError: The storage cannot be opened.
    """
    import optuna

    from conveyor.train.tuning._budget import optimize_within_budget
    from conveyor.train.tuning._objective import Objective, load_tuning_data
    from conveyor.train.tuning._storage import BudgetLock, open_storage

    spec = job.model_spec
    tune = spec.tune
    if tune is None:  # run_study checked it; a worker built by hand may not have
        from conveyor.errors import TrainingError

        raise TrainingError("model.tune is not set; add a tune section with a search space")
    data = load_tuning_data(job.dataset, spec, job.time_column)
    study = optuna.load_study(
        study_name=job.study_name,
        storage=open_storage(job.storage_url),
        sampler=make_sampler(tune.sampler, job.seed + _WORKER_SEED_STRIDE * job.worker),
        pruner=make_pruner(tune.pruner, tune.cv_folds),
    )
    objective = Objective(
        spec,
        data,
        metric=job.metric,
        direction=job.direction,
        n_jobs=job.n_jobs,
        worker=job.worker,
    )
    callbacks: list[Callback] = []
    if job.tracking is not None:
        from conveyor.train.tuning._tracking import TrialLogger

        callbacks.append(TrialLogger(job.tracking, metric=job.metric, fixed=spec.params))
    if after_trial is not None:
        callbacks.append(after_trial)
    lock = BudgetLock(job.storage_url, job.study_name)
    try:
        optimize_within_budget(
            study,
            objective,
            n_trials=job.n_trials,
            lock=lock,
            deadline=job.deadline,
            callbacks=callbacks,
        )
    finally:
        lock.close()
