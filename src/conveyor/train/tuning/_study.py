"""Run a hyperparameter study stored in the metadata store's database, with N workers."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from conveyor.errors import TrainingError
from conveyor.spec._metrics import PRIMARY_METRIC, TASK_METRICS, Direction, check_metric
from conveyor.train.tuning._objective import ERROR_ATTR
from conveyor.train.tuning._runner import WorkerJob, run_trials
from conveyor.train.tuning._space import check_space

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from conveyor.spec._model import ModelSpec
    from conveyor.train.tuning._tracking import TrialTracking

__all__ = ["TuneResult", "run_study", "study_name"]

MAX_STUDY_NAME: Final = 100
_PROJECT_CHARS: Final = 60
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.-]+")
_logger = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class TuneResult:
    """The outcome of a study (over every run and worker that took part in it).

    Attributes:
        study_name: The Optuna study.
        metric: The tuning metric.
        direction: ``"maximize"`` or ``"minimize"``.
        best_params: The best trial's tuned parameters only; the model trains with
            ``model.params`` updated with them.
        best_value: The best trial's metric (validation part, or mean over folds).
        best_trial: The best trial's number.
        n_complete: Trials that finished.
        n_pruned: Trials a pruner stopped early.
        n_failed: Trials that raised, and trials of dead workers (those are run again).
    """

    study_name: str
    metric: str
    direction: str
    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    n_complete: int
    n_pruned: int
    n_failed: int

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return asdict(self)


def study_name(project: str, dataset_sha256: str, model_spec_hash: str) -> str:
    """The study for a project, dataset and model spec: deterministic, at most 100 chars.

    ``<project>-<dataset sha256[:12]>-<spec hash[:12]>``; a project name longer than 60
    characters is shortened and suffixed with a hash of the whole name, and characters
    other than letters, digits, ``_``, ``.`` and ``-`` become ``-``.
    """
    name = _UNSAFE.sub("-", project).strip("-") or "project"
    if len(name) > _PROJECT_CHARS:
        digest = hashlib.sha256(project.encode()).hexdigest()[:8]
        name = f"{name[: _PROJECT_CHARS - 9]}-{digest}"
    return f"{name}-{dataset_sha256[:12]}-{model_spec_hash[:12]}"[:MAX_STUDY_NAME]


def run_study(
    *,
    dataset: Path,
    model_spec: ModelSpec,
    time_column: str | None,
    storage_url: str,
    study_name: str,
    workers: int = 1,
    n_jobs: int | None = None,
    tracking: TrialTracking | None = None,
    progress: Progress | None = None,
) -> TuneResult:
    """Tune ``model_spec.tune.space`` on the train and validation parts of ``dataset``.

    The study lives in ``storage_url`` (the metadata store's database). It is created or
    joined, so the same call on another machine with the same URL and study name adds its
    workers to the same study, and a later call with a larger ``n_trials`` continues it.
    ``tune.n_trials`` is the total over all workers and machines (queued, running,
    complete, pruned and failed trials count; a dead worker's trial is run again);
    ``tune.timeout`` stops starting trials after that long (per call).

    With ``workers == 1`` the trials run in this process, and the same spec and data give
    the same best parameters. With ``workers > 1`` each worker is a ``spawn``-ed process
    that loads the data itself; trials then run in parallel, their order depends on timing,
    and results are not reproducible. Each worker's sampler is seeded from
    ``model.split.seed``, the number of trials the study already had and the worker index.

    Args:
        dataset: The validated dataset (Parquet); its test part is never used.
        model_spec: The model spec; ``model.tune`` must be set.
        time_column: ``dataset.time_column`` (for time splits).
        storage_url: SQLAlchemy URL, ``sqlite:///...`` or ``postgresql+psycopg://...``.
        study_name: See :func:`study_name`.
        workers: Worker processes on this machine.
        n_jobs: Threads per trial's training (default ``cpu_count // workers``, at least 1).
        tracking: Log each trial as an MLflow child run of this parent.
        progress: Called as trials finish with ``(done, n_trials, "trial 7/20 best roc_auc
            0.71")``.

    Raises:
        TrainingError: No or an empty search space; a parameter the algorithm does not take;
            a metric unknown for the task; the data does not fit the spec; every trial
            failed (with the first error) or none completed; every worker failed.
        BackendUnavailableError: The storage cannot be opened.
    """
    import optuna

    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    check_space(model_spec)
    tune = model_spec.tune
    if tune is None:  # check_space raised already; this tells mypy
        raise TrainingError("model.tune is not set")
    metric = tune.metric or PRIMARY_METRIC[model_spec.task]
    problem = check_metric(metric, model_spec.task)
    if problem:
        raise TrainingError(f"model.tune.metric: {problem}")
    direction = Direction(tune.direction or TASK_METRICS[model_spec.task][metric])
    threads = n_jobs or max(1, (os.cpu_count() or 1) // workers)
    deadline = None if tune.timeout is None else time.time() + tune.timeout.total_seconds()

    from conveyor.train.tuning._storage import open_storage

    study = optuna.create_study(
        storage=open_storage(storage_url),
        study_name=study_name,
        direction=direction.value,
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction.value:
        raise TrainingError(
            f"study {study_name!r} already exists and {study.direction.name.lower()}s its "
            f"metric, but {metric} is to be {direction.value}d; use another study name"
        )
    job = WorkerJob(
        dataset=Path(dataset),
        model_spec=model_spec,
        time_column=time_column,
        storage_url=storage_url,
        study_name=study_name,
        metric=metric,
        direction=direction,
        n_trials=tune.n_trials,
        n_jobs=threads,
        seed=model_spec.split.seed + len(study.get_trials(deepcopy=False)),
        deadline=deadline,
        tracking=tracking,
    )
    poll = _poller(study, tune.n_trials, metric, progress)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if workers == 1:
            run_trials(job, after_trial=lambda _study, _trial: poll())
        else:
            from dataclasses import replace

            from conveyor.train.tuning._workers import run_workers

            failures = run_workers([replace(job, worker=i) for i in range(workers)], poll)
            if len(failures) == workers:
                raise TrainingError(
                    f"all {workers} tuning workers failed; the first: {failures[0]}"
                )
    finally:
        optuna.logging.set_verbosity(verbosity)
    return summarize(study, metric, direction)


def _poller(
    study: optuna.Study, n_trials: int, metric: str, progress: Progress | None
) -> Callable[[], None]:
    from optuna.trial import TrialState

    from conveyor.train.tuning._budget import counts_toward_budget

    last: list[str] = []

    def poll() -> None:
        if progress is None:
            return
        trials = study.get_trials(deepcopy=False)
        done = sum(t.state.is_finished() and counts_toward_budget(t) for t in trials)
        values = [t.value for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
        text = f"trial {done}/{n_trials}"
        if values:
            best = max(values) if study.direction.name == "MAXIMIZE" else min(values)
            text += f" best {metric} {best:.4g}"
        if last != [text]:
            last[:] = [text]
            progress(done, n_trials, text)

    return poll


def summarize(study: optuna.Study, metric: str, direction: Direction) -> TuneResult:
    """The :class:`TuneResult` of everything the study holds.

    Raises:
        TrainingError: No trial completed (with the first trial error, if any).
    """
    from optuna.trial import TrialState

    from conveyor.train.tuning._budget import is_surplus

    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    by_state: dict[TrialState, list[FrozenTrial]] = {state: [] for state in TrialState}
    for trial in trials:
        if not is_surplus(trial):
            by_state[trial.state].append(trial)
    failed = by_state[TrialState.FAIL]
    if not by_state[TrialState.COMPLETE]:
        errors = [t.user_attrs[ERROR_ATTR] for t in failed if ERROR_ATTR in t.user_attrs]
        if errors:
            raise TrainingError(
                f"all {len(failed)} tuning trials of study {study.study_name!r} failed; "
                f"the first error: {errors[0]}"
            )
        raise TrainingError(
            f"no tuning trial of study {study.study_name!r} completed "
            f"({len(by_state[TrialState.PRUNED])} pruned, {len(failed)} failed); raise "
            "model.tune.n_trials or model.tune.timeout, or set model.tune.pruner: none"
        )
    best = study.best_trial
    return TuneResult(
        study_name=study.study_name,
        metric=metric,
        direction=direction.value,
        best_params=dict(best.params),
        best_value=float(best.value if best.value is not None else float("nan")),
        best_trial=best.number,
        n_complete=len(by_state[TrialState.COMPLETE]),
        n_pruned=len(by_state[TrialState.PRUNED]),
        n_failed=len(failed),
    )
