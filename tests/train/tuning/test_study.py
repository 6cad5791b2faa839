"""Studies in a SQLite database with one worker: results, continuation, pruning, folds."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from conveyor.errors import TrainingError
from conveyor.spec import ModelSpec
from conveyor.store import MetadataStore
from conveyor.train.tuning import TuneResult, run_study, study_name

MakeSpec = Callable[..., ModelSpec]


def _url(tmp_path: Path, name: str = "conveyor.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials()


def test_one_worker_finds_the_same_best_params_twice(
    tmp_path: Path, cancer_parquet: Path, make_spec: MakeSpec
) -> None:
    spec = make_spec(
        tune={
            "n_trials": 6,
            "space": {
                "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
                "num_leaves": {"type": "int", "low": 3, "high": 31},
            },
        }
    )
    seen: list[tuple[int, int, str]] = []
    results: list[TuneResult] = []
    for run in ("a", "b"):
        results.append(
            run_study(
                dataset=cancer_parquet,
                model_spec=spec,
                time_column=None,
                storage_url=_url(tmp_path / run),
                n_jobs=1,
                study_name="cancer",
                progress=lambda done, total, text: seen.append((done, total, text)),
            )
        )
    first, second = results
    assert first.best_params == second.best_params
    assert first.best_value == second.best_value
    assert set(first.best_params) == {"learning_rate", "num_leaves"}  # tuned params only
    assert first.metric == "roc_auc" and first.direction == "maximize"
    assert 0.9 < first.best_value <= 1.0
    assert first.n_complete + first.n_pruned == 6 and first.n_failed == 0
    assert first.to_json()["best_params"] == first.best_params
    assert seen[5][:2] == (6, 6) and seen[5][2].startswith("trial 6/6 best roc_auc 0.9")
    trials = _trials(_url(tmp_path / "a"), "cancer")
    assert {t.user_attrs["pid"] for t in trials} == {os.getpid()}
    # Intermediate values are LightGBM's validation AUC per boosting round (maximized).
    complete = next(t for t in trials if t.state is TrialState.COMPLETE)
    assert sorted(complete.intermediate_values) == [*range(10), 19, 29]
    assert all(0.5 < value <= 1 for value in complete.intermediate_values.values())


def test_a_larger_budget_continues_the_study(
    tmp_path: Path, cancer_parquet: Path, make_spec: MakeSpec
) -> None:
    url = _url(tmp_path)
    kwargs = {"dataset": cancer_parquet, "time_column": None, "storage_url": url}
    run_study(model_spec=make_spec(tune={"n_trials": 3}), n_jobs=1, study_name="grow", **kwargs)
    before = {t.number: t.params for t in _trials(url, "grow")}
    assert sorted(before) == [0, 1, 2]
    result = run_study(
        model_spec=make_spec(tune={"n_trials": 5}), n_jobs=1, study_name="grow", **kwargs
    )
    after = _trials(url, "grow")
    assert len(after) == 5 and result.n_complete + result.n_pruned == 5
    assert {t.number: t.params for t in after if t.number < 3} == before
    # The same budget again runs nothing.
    again = run_study(
        model_spec=make_spec(tune={"n_trials": 5}), n_jobs=1, study_name="grow", **kwargs
    )
    assert len(_trials(url, "grow")) == 5 and again.best_params == result.best_params


def test_the_median_pruner_stops_hopeless_trials(
    tmp_path: Path, cancer_parquet: Path, make_spec: MakeSpec
) -> None:
    spec = make_spec(
        tune={
            "n_trials": 14,
            "metric": "log_loss",
            "sampler": "random",
            "pruner": "median",
            "space": {
                "learning_rate": {
                    "type": "categorical",
                    "choices": [0.3, 0.25, 0.2, 0.15, 0.0001],
                }
            },
        }
    )
    url = _url(tmp_path)
    result = run_study(
        dataset=cancer_parquet,
        model_spec=spec,
        time_column=None,
        storage_url=url,
        n_jobs=1,
        study_name="prune",
    )
    trials = _trials(url, "prune")
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert result.n_pruned == len(pruned) >= 1
    assert {t.params["learning_rate"] for t in pruned} == {0.0001}
    assert result.best_params["learning_rate"] > 0.1 and result.direction == "minimize"
    assert all(max(t.intermediate_values) < 29 for t in pruned)  # stopped early


def test_a_maximized_metric_reports_negated_native_losses(
    tmp_path: Path, cancer_parquet: Path, make_spec: MakeSpec
) -> None:
    spec = make_spec(task="regression", tune={"n_trials": 2, "metric": "r2", "pruner": "none"})
    url = _url(tmp_path)
    result = run_study(
        dataset=cancer_parquet,
        model_spec=spec,
        time_column=None,
        storage_url=url,
        n_jobs=1,
        study_name="r2",
    )
    assert result.direction == "maximize" and 0.5 < result.best_value < 1
    for trial in _trials(url, "r2"):
        values = trial.intermediate_values
        assert all(value < 0 for value in values.values())  # -l2
        assert values[29] > values[0]  # improving means rising, as the study maximizes


@pytest.mark.parametrize("method", ["time", "random"])
def test_cv_folds_average_folds_and_report_each(
    tmp_path: Path, flights_parquet: Path, make_spec: MakeSpec, method: str
) -> None:
    spec = make_spec(
        target="delayed",
        features={"exclude": ["arr_delay"]},
        split={"method": method},
        tune={"n_trials": 2, "cv_folds": 3, "pruner": "median"},
    )
    url = _url(tmp_path)
    result = run_study(
        dataset=flights_parquet,
        model_spec=spec,
        time_column="time_hour",
        storage_url=url,
        n_jobs=1,
        study_name=f"cv-{method}",
    )
    assert result.n_complete == 2
    for trial in _trials(url, f"cv-{method}"):
        steps = trial.intermediate_values
        assert sorted(steps) == [0, 1, 2]
        assert trial.value == pytest.approx(steps[2])  # the mean of the three folds


def test_all_trials_failing_raises_the_first_error(
    tmp_path: Path, cancer_parquet: Path, make_spec: MakeSpec
) -> None:
    spec = make_spec(
        algorithm="sklearn:sklearn.linear_model.LogisticRegression",
        params={"max_iter": 50},
        tune={"n_trials": 2, "space": {"penalty": {"type": "categorical", "choices": ["l3"]}}},
    )
    with pytest.raises(
        TrainingError, match=r"all 2 tuning trials .* failed; the first error: .*l3"
    ):
        run_study(
            dataset=cancer_parquet,
            model_spec=spec,
            time_column=None,
            storage_url=_url(tmp_path),
            n_jobs=1,
            study_name="broken",
        )


def test_a_param_the_algorithm_lacks_fails_before_any_trial(
    tmp_path: Path, cancer_parquet: Path, make_spec: MakeSpec
) -> None:
    spec = make_spec(tune={"space": {"learning_rat": {"type": "float", "low": 0.1, "high": 1}}})
    with pytest.raises(TrainingError, match=r"no parameter 'learning_rat'; did you mean"):
        run_study(
            dataset=cancer_parquet,
            model_spec=spec,
            time_column=None,
            storage_url=_url(tmp_path),
            n_jobs=1,
            study_name="typo",
        )
    assert not (tmp_path / "conveyor.db").exists()


def test_optuna_tables_coexist_with_the_metadata_store(
    tmp_path: Path, cancer_parquet: Path, make_spec: MakeSpec
) -> None:
    url = _url(tmp_path / "state")
    with MetadataStore(url) as store:
        run = store.create_run(
            project="demo", spec_hash="abc", actor="me", hostname="host", pid=os.getpid()
        )
    result = run_study(
        dataset=cancer_parquet,
        model_spec=make_spec(tune={"n_trials": 2}),
        time_column=None,
        storage_url=url,
        n_jobs=1,
        study_name="shared",
    )
    assert result.n_complete == 2
    with MetadataStore(url) as store:  # reopening checks Conveyor's schema version
        assert [r.id for r in store.list_runs(project="demo")] == [run.id]
    tables = set(sqlalchemy.inspect(sqlalchemy.create_engine(url)).get_table_names())
    assert {"alembic_version", "conveyor_alembic_version", "studies", "trials"} <= tables


def test_study_names_are_deterministic_and_short() -> None:
    name = study_name("demo", "a" * 64, "b" * 64)
    assert name == "demo-aaaaaaaaaaaa-bbbbbbbbbbbb" == study_name("demo", "a" * 64, "b" * 64)
    long_a, long_b = study_name("x" * 300, "a" * 64, "b" * 64), study_name("x" * 301, "a", "b")
    assert len(long_a) <= 100 and long_a != study_name("x" * 299, "a" * 64, "b" * 64)
    assert len(long_b) <= 100
    assert study_name("my project/ü", "a", "b") == "my-project-a-b"
