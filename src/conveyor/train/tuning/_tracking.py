"""One MLflow child run per trial, logged by the worker that ran it."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from conveyor.train.tuning._budget import is_surplus

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

__all__ = ["INTERMEDIATE_METRIC", "TrialLogger", "TrialTracking"]

INTERMEDIATE_METRIC: Final = "intermediate_value"
"""Child-run metric with the trial's intermediate values, one per boosting round (or fold)."""
_BATCH: Final = 1000  # MLflow's log_batch limit on metrics per call
_PARAM_BATCH: Final = 100

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialTracking:
    """Where trials log their MLflow child runs.

    Attributes:
        tracking_uri: The MLflow tracking URI.
        experiment_id: The experiment of the parent run.
        parent_run_id: The run the trials are children of (tag ``mlflow.parentRunId``).
    """

    tracking_uri: str
    experiment_id: str
    parent_run_id: str


class TrialLogger:
    """Optuna callback logging each finished trial as an MLflow child run ``trial-<number>``.

    The run holds the trial's parameters (fixed and tuned), the tuning metric (complete
    trials), the intermediate values as metric ``intermediate_value`` with their step, and
    tags with the trial's number and state. An explicit ``MlflowClient`` is used, never
    MLflow's global active run, because each worker is its own process. MLflow failures are
    logged as warnings: they never stop the study.
    """

    def __init__(self, tracking: TrialTracking, *, metric: str, fixed: Mapping[str, Any]) -> None:
        import mlflow

        self.tracking = tracking
        self.metric = metric
        self.fixed = dict(fixed)
        self.client = mlflow.MlflowClient(tracking.tracking_uri)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if is_surplus(trial):
            return
        try:
            self._log(study, trial)
        except Exception as err:  # tracking must never stop the study
            _logger.warning("could not log trial %d to MLflow: %s", trial.number, err)

    def _log(self, study: optuna.Study, trial: FrozenTrial) -> None:
        from mlflow.entities import Metric, Param
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
        from optuna.trial import TrialState

        state = trial.state.name.lower()
        run = self.client.create_run(
            self.tracking.experiment_id,
            tags={
                MLFLOW_PARENT_RUN_ID: self.tracking.parent_run_id,
                "optuna.study_name": study.study_name,
                "optuna.trial_number": str(trial.number),
                "optuna.trial_state": state,
            },
            run_name=f"trial-{trial.number}",
        )
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        params = [Param(k, str(v)) for k, v in {**self.fixed, **trial.params}.items()]
        metrics = [
            Metric(INTERMEDIATE_METRIC, float(value), now, int(step))
            for step, value in sorted(trial.intermediate_values.items())
        ]
        if trial.state is TrialState.COMPLETE and trial.value is not None:
            metrics.append(Metric(self.metric, float(trial.value), now, 0))
        for start in range(0, len(params), _PARAM_BATCH):
            self.client.log_batch(run_id, params=params[start : start + _PARAM_BATCH])
        for start in range(0, len(metrics), _BATCH):
            self.client.log_batch(run_id, metrics=metrics[start : start + _BATCH])
        error = trial.user_attrs.get("error")
        if error:
            self.client.set_tag(run_id, "error", str(error)[:5000])
        status = "FAILED" if trial.state is TrialState.FAIL else "FINISHED"
        self.client.set_terminated(run_id, status=status)
