"""Run trials until the study holds ``n_trials`` of them, counted over every worker.

Optuna's ``MaxTrialsCallback`` stops a worker only after its own trial ends and counts only
finished trials, so ``w`` parallel workers overshoot by up to ``w - 1`` trials. Here a worker
takes the budget lock, counts the study's trials (running and queued ones included), queues
one trial if the budget allows and releases the lock; then runs one trial, which pops a
queued one. Total trials started therefore never exceed the budget; in the rare race where a
worker pops a trial another worker queued, Optuna creates a fresh trial, which the objective
fails at once as surplus (user attribute ``conveyor_surplus``) without counting it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from conveyor.train.tuning._objective import ERROR_ATTR, QUEUED_ATTR, SURPLUS_ATTR

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from conveyor.train.tuning._storage import BudgetLock

__all__ = ["counts_toward_budget", "is_surplus", "optimize_within_budget"]

WAIT_S: Final = 1.0
"""How often a worker with nothing left to start checks whether others' trials ended."""

Callback = Callable[["optuna.Study", "FrozenTrial"], None]


def is_surplus(trial: FrozenTrial) -> bool:
    """Whether the trial was started past the budget and failed without running."""
    return bool(trial.user_attrs.get(SURPLUS_ATTR))


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """Queued, running, complete and pruned trials, and trials the objective failed.

    Trials of a dead worker (failed by the heartbeat check, then queued again) and surplus
    trials do not count.
    """
    from optuna.trial import TrialState

    if trial.state is TrialState.FAIL:
        return ERROR_ATTR in trial.user_attrs
    return True


def optimize_within_budget(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    *,
    n_trials: int,
    lock: BudgetLock,
    deadline: float | None,
    callbacks: Sequence[Callback] = (),
) -> None:
    """Run trials of ``study`` until it holds ``n_trials`` of them or ``deadline`` passes.

    Args:
        study: The study, on the shared storage.
        objective: The Optuna objective.
        n_trials: The budget over all workers, counted by :func:`counts_toward_budget`.
        lock: The lock shared by all workers of the study.
        deadline: ``time.time()`` after which no trial is started (running ones finish).
        callbacks: Called after each trial, as ``study.optimize`` callbacks.
    """
    import optuna
    from optuna.trial import TrialState

    while deadline is None or time.time() < deadline:
        with lock.hold():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False)
            used = sum(counts_toward_budget(trial) for trial in trials)
            states = {trial.state for trial in trials}
            if used < n_trials:
                study.enqueue_trial({}, user_attrs={QUEUED_ATTR: True})
                action = "run"
            elif TrialState.WAITING in states:
                action = "run"  # a dead worker's trial, queued again
            elif TrialState.RUNNING in states:
                action = "wait"  # others' trials may still fail and be queued again
            else:
                return
        if action == "wait":
            time.sleep(WAIT_S)
            continue
        kwargs: dict[str, Any] = {"n_trials": 1, "catch": (Exception,), "callbacks": callbacks}
        with warnings.catch_warnings():
            # optimize() checks for stale trials through an experimental function.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, **kwargs)
