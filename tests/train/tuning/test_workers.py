"""Worker processes sharing one study, interruption, and MLflow child runs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conveyor.errors import TrainingError
from conveyor.spec import Direction, ModelSpec
from conveyor.train.tuning import TrialTracking, run_study
from conveyor.train.tuning._runner import WorkerJob
from conveyor.train.tuning._workers import run_workers

MakeSpec = Callable[..., ModelSpec]
BackendUrl = Callable[..., str]


def _flights_spec(make_spec: MakeSpec, n_trials: int) -> ModelSpec:
    return make_spec(
        target="delayed",
        features={"exclude": ["arr_delay"]},
        params={"n_estimators": 30, "num_leaves": 15},
        tune={"n_trials": n_trials, "pruner": "none"},
    )


@pytest.mark.integration
def test_two_workers_share_one_postgres_study(
    backend_url: BackendUrl, flights_parquet: Path, make_spec: MakeSpec
) -> None:
    url = backend_url("postgresql", fresh=True)
    seen: list[int] = []
    result = run_study(
        dataset=flights_parquet,
        model_spec=_flights_spec(make_spec, 8),
        time_column="time_hour",
        storage_url=url,
        study_name="shared",
        workers=2,
        progress=lambda done, total, text: seen.append(done),
    )
    every = optuna.load_study(study_name="shared", storage=url).get_trials()
    # Two workers can race for the last trial; the loser's is failed at once as surplus,
    # never run and never counted.
    trials = [t for t in every if not t.user_attrs.get("conveyor_surplus")]
    assert all(t.state is TrialState.FAIL for t in every if t not in trials)
    assert len(trials) == 8 and {t.state for t in trials} == {TrialState.COMPLETE}
    assert result.n_complete == 8 and result.n_failed == 0
    pids = {t.user_attrs["pid"] for t in trials}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {t.user_attrs["worker"] for t in trials} == {0, 1}
    assert seen[-1] == 8 and seen == sorted(seen)


def test_workers_that_all_fail_raise_their_error(
    tmp_path: Path, cancer_parquet: Path, make_spec: MakeSpec
) -> None:
    spec = make_spec(target="no_such_column")
    with pytest.raises(TrainingError, match=r"all 2 tuning workers failed.*'no_such_column'"):
        run_study(
            dataset=cancer_parquet,
            model_spec=spec,
            time_column=None,
            storage_url=f"sqlite:///{tmp_path / 'conveyor.db'}",
            study_name="broken",
            workers=2,
            n_jobs=1,
        )


def test_an_interrupted_parent_leaves_no_worker_behind(
    tmp_path: Path, cancer_parquet: Path, make_spec: MakeSpec
) -> None:
    url = f"sqlite:///{tmp_path / 'conveyor.db'}"
    optuna.create_study(study_name="stop", storage=url)
    job = WorkerJob(
        dataset=cancer_parquet,
        model_spec=make_spec(tune={"n_trials": 1000}),
        time_column=None,
        storage_url=url,
        study_name="stop",
        metric="roc_auc",
        direction=Direction.maximize,
        n_trials=1000,
        n_jobs=1,
        seed=0,
        deadline=None,
    )
    calls: list[int] = []

    def poll() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    import multiprocessing

    with pytest.raises(KeyboardInterrupt):
        run_workers([job, job], poll)
    assert multiprocessing.active_children() == []


# MLflow's SQL store uses a loader option SQLAlchemy 2.1 deprecates (not ours to fix).
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_each_trial_is_an_mlflow_child_run(
    tmp_path: Path, cancer_parquet: Path, make_spec: MakeSpec
) -> None:
    import mlflow

    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri)
    experiment_id = client.create_experiment("tuning", artifact_location=str(tmp_path / "art"))
    parent = client.create_run(experiment_id, run_name="tune")
    tracking = TrialTracking(tracking_uri, experiment_id, parent.info.run_id)
    run_study(
        dataset=cancer_parquet,
        model_spec=make_spec(tune={"n_trials": 3, "pruner": "none"}),
        time_column=None,
        storage_url=f"sqlite:///{tmp_path / 'conveyor.db'}",
        study_name="tracked",
        n_jobs=1,
        tracking=tracking,
    )
    children = client.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(run.info.run_name for run in children) == ["trial-0", "trial-1", "trial-2"]
    for run in children:
        assert run.data.tags["optuna.trial_state"] == "complete"
        assert run.info.status == "FINISHED"
        assert 0.9 < run.data.metrics["roc_auc"] <= 1
        assert run.data.params["n_estimators"] == "30" and "learning_rate" in run.data.params
        history = client.get_metric_history(run.info.run_id, "intermediate_value")
        assert sorted(m.step for m in history) == [*range(10), 19, 29]
