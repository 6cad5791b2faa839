"""The XGBoost adapter: quality on every task, reports, early stopping, byte-identical saves."""

from __future__ import annotations

import hashlib
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from conveyor.errors import TrainingError
from conveyor.spec._metrics import Task
from conveyor.spec._model import ModelSpec
from conveyor.train._dataset import FeatureKind
from conveyor.train.algorithms import BaseAlgorithm, XGBoostAlgorithm, build_algorithm

SCHEMA: dict[str, FeatureKind] = {
    "size": "numeric",
    "colour": "categorical",
    "flag": "boolean",
    "when": "datetime",
}


def synthetic(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """Features of every kind and a target driven by ``size`` and ``colour``."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
            "flag": rng.random(n) > 0.5,
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), "s"),
        }
    )
    y = X["size"] * 2 + (X["colour"] == "red") + rng.normal(scale=0.1, size=n)
    return X, y.to_numpy()


def targets(task: Task, y: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if task is Task.regression:
        return y
    if task is Task.binary_classification:
        return y > 0.5
    return np.where(y > 1, "high", np.where(y < -1, "low", "mid")).astype(object)


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("task", list(Task), ids=str)
def test_learns_every_task_and_reloads_identically(task: Task, tmp_path: Path) -> None:
    X, raw = synthetic()
    y = targets(task, raw)
    iterations: list[tuple[int, dict[str, float]]] = []
    model = XGBoostAlgorithm(task=task, feature_schema=SCHEMA, params={"n_estimators": 40})
    model.fit(
        X[:400],
        y[:400],
        X_valid=X[400:500],
        y_valid=y[400:500],
        on_iteration=lambda i, metrics: iterations.append((i, metrics)),
    )
    predicted = model.predict(X[500:])
    if task is Task.regression:
        assert predicted.dtype == np.float64
        assert np.corrcoef(predicted, y[500:])[0, 1] > 0.95
    else:
        assert (predicted == y[500:]).mean() > 0.85
        proba = model.predict_proba(X[500:])
        assert proba.shape == (100, len(model.classes_ or ()))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
        np.testing.assert_array_equal(predicted, np.array(model.classes_)[proba.argmax(axis=1)])

    assert [i for i, _ in iterations] == list(range(40))
    (name,) = iterations[0][1]
    metric = {"regression": "rmse", "binary_classification": "logloss"}.get(task, "mlogloss")
    assert name == f"validation_{metric}"
    assert iterations[-1][1][name] < iterations[0][1][name]

    model.save(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"manifest.json", "model.pkl"}
    loaded = BaseAlgorithm.load(tmp_path / "m")
    assert isinstance(loaded, XGBoostAlgorithm)
    assert loaded.manifest()["versions"]["xgboost"] == xgboost.__version__
    np.testing.assert_array_equal(loaded.predict(X[500:]), predicted)


def test_pipeline_is_a_preprocessor_and_an_xgboost_estimator() -> None:
    X, raw = synthetic()
    model = XGBoostAlgorithm(
        task=Task.binary_classification, feature_schema=SCHEMA, params={"n_estimators": 5}
    )
    model.fit(X, raw > 0.5, on_iteration=lambda i, m: None)
    pipeline = model.pipeline_
    assert isinstance(pipeline, Pipeline)
    assert [name for name, _ in pipeline.steps] == ["preprocess", "model"]
    assert isinstance(pipeline["preprocess"], ColumnTransformer)
    estimator = pipeline["model"]
    assert isinstance(estimator, xgboost.XGBClassifier)
    assert estimator.tree_method == "hist"
    assert estimator.random_state == 42
    # The progress callback (a closure of the caller's) is not kept in the model.
    assert estimator.callbacks is None
    pickle.loads(pickle.dumps(pipeline))


def test_early_stopping_stops_when_validation_stops_improving() -> None:
    X, raw = synthetic(n=400)
    y = raw > 0.5
    iterations: list[int] = []
    model = XGBoostAlgorithm(
        task=Task.binary_classification,
        feature_schema=SCHEMA,
        params={"n_estimators": 500, "learning_rate": 0.5, "early_stopping_rounds": 5},
    )
    model.fit(
        X[:300],
        y[:300],
        X_valid=X[300:],
        y_valid=y[300:],
        on_iteration=lambda i, metrics: iterations.append(i),
    )
    assert model.pipeline_ is not None
    best = model.pipeline_["model"].best_iteration
    assert len(iterations) == best + 6 < 500

    without_validation = XGBoostAlgorithm(
        task=Task.binary_classification,
        feature_schema=SCHEMA,
        params={"early_stopping_rounds": 5},
    )
    with pytest.raises(TrainingError, match="validation"):
        without_validation.fit(X, y)


TRAIN_AND_SAVE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from test_xgboost import save_trained
    save_trained(Path(sys.argv[2]))
    """
)


def save_trained(folder: Path, seed: int = 42) -> None:
    """Train a model using randomness (row and column sampling) and save it."""
    X, raw = synthetic()
    model = XGBoostAlgorithm(
        task=Task.multiclass_classification,
        feature_schema=SCHEMA,
        params={"n_estimators": 20, "subsample": 0.7, "colsample_bytree": 0.7},
        seed=seed,
        n_jobs=2,
    )
    model.fit(X[:500], targets(Task.multiclass_classification, raw)[:500])
    model.save(folder)


@pytest.mark.slow
def test_same_data_params_and_seed_give_byte_identical_files(tmp_path: Path) -> None:
    # Separate processes with different hash seeds: anything depending on string hashes
    # (set order in a pickle) would differ.
    folders = [tmp_path / "a", tmp_path / "b"]
    for hash_seed, folder in zip(("1", "2"), folders, strict=True):
        subprocess.run(
            [sys.executable, "-c", TRAIN_AND_SAVE, str(Path(__file__).parent), str(folder)],
            check=True,
            env={"PYTHONHASHSEED": hash_seed, "PATH": ""},
        )
    first, second = (digests(folder) for folder in folders)
    assert set(first) == {"manifest.json", "model.pkl"}
    assert first == second


def test_another_seed_gives_another_model(tmp_path: Path) -> None:
    save_trained(tmp_path / "a", seed=1)
    save_trained(tmp_path / "b", seed=1)
    save_trained(tmp_path / "c", seed=2)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert digests(tmp_path / "a")["model.pkl"] != digests(tmp_path / "c")["model.pkl"]


def test_unseen_categories_and_missing_values_predict() -> None:
    X, raw = synthetic()
    model = XGBoostAlgorithm(
        task=Task.binary_classification, feature_schema=SCHEMA, params={"n_estimators": 10}
    )
    X_train = X.copy()
    X_train.loc[::7, "size"] = np.nan
    X_train.loc[::5, "colour"] = None
    model.fit(X_train, raw > 0.5)
    odd = X[:20].copy()
    odd["colour"] = "purple"
    odd["size"] = np.nan
    odd["when"] = None
    proba = model.predict_proba(odd)
    assert proba.shape == (20, 2)
    assert np.isfinite(proba).all()


def test_set_num_threads_after_loading(tmp_path: Path) -> None:
    X, raw = synthetic()
    model = XGBoostAlgorithm(
        task=Task.regression, feature_schema=SCHEMA, params={"n_estimators": 10, "nthread": 2}
    )
    model.fit(X, raw).save(tmp_path / "m")
    loaded = BaseAlgorithm.load(tmp_path / "m")
    loaded.set_num_threads(1)
    assert loaded.pipeline_ is not None
    assert loaded.pipeline_["model"].n_jobs == 1
    assert "nthread" not in (loaded.params or {})
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_dpeth": 3}, r"does not use params \['max_dpeth'\]; did you mean 'max_depth'\?"),
        ({"callbacks": []}, "cannot set 'callbacks'"),
        ({"max_depth": -2}, "failed to train"),
    ],
)
def test_bad_params_are_explained(params: dict[str, Any], message: str) -> None:
    X, raw = synthetic(n=100)
    model = XGBoostAlgorithm(task=Task.regression, feature_schema=SCHEMA, params=params)
    with pytest.raises(TrainingError, match=message):
        model.fit(X, raw)


def test_build_algorithm_makes_a_seeded_xgboost_adapter() -> None:
    spec = ModelSpec.model_validate(
        {"task": "regression", "target": "t", "algorithm": "xgboost", "split": {"seed": 3}}
    )
    model = build_algorithm(spec, SCHEMA, n_jobs=1)
    assert isinstance(model, XGBoostAlgorithm)
    assert (model.algorithm, model.seed, model.n_jobs) == ("xgboost", 3, 1)
