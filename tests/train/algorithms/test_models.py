"""LightGBM and scikit-learn adapters trained on real flights: quality, I/O, determinism."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from conveyor.errors import TrainingError
from conveyor.spec._metrics import Task
from conveyor.spec._model import ModelSpec
from conveyor.train._dataset import FeatureKind, TrainingFrame, load_training_frame
from conveyor.train._split import Split, split
from conveyor.train.algorithms import (
    BaseAlgorithm,
    LightGBMAlgorithm,
    SklearnAlgorithm,
    build_algorithm,
)

LOGISTIC = "sklearn:sklearn.linear_model.LogisticRegression"
N_ESTIMATORS = 40
ALGORITHMS = {
    "lightgbm": {"n_estimators": N_ESTIMATORS, "learning_rate": 0.1},
    LOGISTIC: {"max_iter": 200},
}


def flights_spec(algorithm: str, **extra: Any) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "task": "binary_classification",
            "target": "delayed",
            "algorithm": algorithm,
            "params": ALGORITHMS[algorithm],
            "features": {"exclude": ["dep_delay"]},
            "split": {"method": "time", "seed": 7},
            **extra,
        }
    )


@dataclass
class Trained:
    spec: ModelSpec
    frame: TrainingFrame
    parts: Split
    model: BaseAlgorithm
    iterations: list[tuple[int, dict[str, float]]]


def train(parquet: Path, algorithm: str) -> Trained:
    spec = flights_spec(algorithm)
    frame = load_training_frame(parquet, spec, time_column="time_hour")
    parts = split(frame, spec.split, task=spec.task)
    iterations: list[tuple[int, dict[str, float]]] = []
    model = build_algorithm(spec, frame.feature_schema)
    model.fit(
        frame.X.iloc[parts.train],
        frame.y[parts.train],
        X_valid=frame.X.iloc[parts.validation],
        y_valid=frame.y[parts.validation],
        on_iteration=lambda i, metrics: iterations.append((i, metrics)),
    )
    return Trained(spec, frame, parts, model, iterations)


@pytest.fixture(scope="module", params=list(ALGORITHMS))
def trained(request: pytest.FixtureRequest, flights_parquet: Path) -> Trained:
    return train(flights_parquet, request.param)


def test_features_exclude_target_time_and_excluded_columns(trained: Trained) -> None:
    assert list(trained.frame.X.columns) == [
        "carrier",
        "dest",
        "distance",
        "month",
        "origin",
        "sched_dep_time",
    ]
    assert trained.frame.feature_schema["carrier"] == "categorical"
    assert trained.frame.feature_schema["distance"] == "numeric"
    assert trained.frame.classes == (False, True)


def test_predicts_delays_on_the_later_test_period(trained: Trained) -> None:
    frame, parts = trained.frame, trained.parts
    assert frame.time is not None
    assert frame.time[parts.train].max() <= frame.time[parts.test].min()
    proba = trained.model.predict_proba(frame.X.iloc[parts.test])
    assert proba.shape == (len(parts.test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert trained.model.classes_ == (False, True)
    # Column 1 is P(delayed=True): it ranks the late flights first.
    auc = roc_auc_score(frame.y[parts.test], proba[:, 1])
    assert auc > 0.6, auc
    labels = trained.model.predict(frame.X.iloc[parts.test])
    assert labels.dtype == bool
    np.testing.assert_array_equal(labels, proba[:, 1] > 0.5)


def test_save_and_load_predict_identically(trained: Trained, tmp_path: Path) -> None:
    trained.model.save(tmp_path / "model")
    loaded = BaseAlgorithm.load(tmp_path / "model")
    assert type(loaded) is type(trained.model)
    assert loaded.algorithm == trained.spec.algorithm
    assert loaded.classes_ == (False, True)
    X = trained.frame.X.iloc[trained.parts.test]
    np.testing.assert_array_equal(loaded.predict_proba(X), trained.model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), trained.model.predict(X))
    manifest = loaded.manifest()
    assert manifest["feature_schema"] == dict(trained.frame.feature_schema)
    assert manifest["versions"]["scikit-learn"]


def test_accepts_numpy_rows_unseen_categories_and_missing_values(trained: Trained) -> None:
    X = trained.frame.X.iloc[trained.parts.test[:50]]
    as_array = X.to_numpy(dtype=object)
    np.testing.assert_array_equal(
        trained.model.predict_proba(as_array), trained.model.predict_proba(X)
    )
    odd = X.copy()
    odd["carrier"] = "ZZ"  # never seen in training
    odd["origin"] = None
    odd["distance"] = np.nan
    proba = trained.model.predict_proba(odd)
    assert proba.shape == (50, 2)
    assert np.isfinite(proba).all()


def test_single_thread_predictions_match(trained: Trained, tmp_path: Path) -> None:
    trained.model.save(tmp_path / "m")
    loaded = BaseAlgorithm.load(tmp_path / "m")
    loaded.set_num_threads(1)
    X = trained.frame.X.iloc[trained.parts.test]
    np.testing.assert_allclose(loaded.predict_proba(X), trained.model.predict_proba(X))


def test_lightgbm_reports_every_iteration(flights_parquet: Path) -> None:
    trained = train(flights_parquet, "lightgbm")
    assert [i for i, _ in trained.iterations] == list(range(N_ESTIMATORS))
    losses = [metrics["validation_binary_logloss"] for _, metrics in trained.iterations]
    assert losses[-1] < losses[0]


def test_sklearn_does_not_report_iterations(flights_parquet: Path) -> None:
    assert train(flights_parquet, LOGISTIC).iterations == []


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


TRAIN_AND_SAVE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from test_models import train
    train(Path(sys.argv[1]), sys.argv[2]).model.save(Path(sys.argv[4]))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_same_data_spec_and_seed_give_byte_identical_files(
    algorithm: str, flights_parquet: Path, tmp_path: Path
) -> None:
    # Two processes with different hash seeds: set and dict orders inside pickles, if any
    # depended on string hashes, would differ.
    folders = [tmp_path / "a", tmp_path / "b"]
    for hash_seed, folder in zip(("1", "2"), folders, strict=True):
        subprocess.run(
            [
                sys.executable,
                "-c",
                TRAIN_AND_SAVE,
                str(flights_parquet),
                algorithm,
                str(Path(__file__).parent),
                str(folder),
            ],
            check=True,
            env={"PYTHONHASHSEED": hash_seed, "PATH": ""},
        )
    first, second = (_digests(folder) for folder in folders)
    assert set(first) == {"manifest.json", "model.pkl"}
    assert first == second


def test_another_seed_gives_another_lightgbm_model(flights_parquet: Path, tmp_path: Path) -> None:
    spec = flights_spec("lightgbm")
    frame = load_training_frame(flights_parquet, spec, time_column="time_hour")
    rows = np.arange(5_000)
    saved = []
    for seed in (1, 2):
        model = LightGBMAlgorithm(
            task=Task.binary_classification,
            feature_schema=frame.feature_schema,
            params={"n_estimators": 5, "bagging_fraction": 0.5, "bagging_freq": 1},
            seed=seed,
        )
        model.fit(frame.X.iloc[rows], frame.y[rows]).save(tmp_path / str(seed))
        saved.append(_digests(tmp_path / str(seed))["model.pkl"])
    assert saved[0] != saved[1]


def _synthetic(n: int = 400) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(0)
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


SCHEMA: dict[str, FeatureKind] = {
    "size": "numeric",
    "colour": "categorical",
    "flag": "boolean",
    "when": "datetime",
}


@pytest.mark.parametrize(
    "model",
    [
        LightGBMAlgorithm(task=Task.regression, feature_schema=SCHEMA, params={"n_estimators": 30}),
        SklearnAlgorithm("sklearn.linear_model.Ridge", task=Task.regression, feature_schema=SCHEMA),
        SklearnAlgorithm(
            "sklearn.ensemble.RandomForestRegressor",
            task=Task.regression,
            feature_schema=SCHEMA,
            params={"n_estimators": 10},
        ),
    ],
    ids=["lightgbm", "ridge", "forest"],
)
def test_regression_with_every_feature_kind(model: BaseAlgorithm, tmp_path: Path) -> None:
    X, y = _synthetic()
    model.fit(X[:300], y[:300])
    predicted = model.predict(X[300:])
    assert predicted.dtype == np.float64
    assert np.corrcoef(predicted, y[300:])[0, 1] > 0.9
    with pytest.raises(TrainingError, match="regressor"):
        model.predict_proba(X[300:])
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(BaseAlgorithm.load(tmp_path / "m").predict(X[300:]), predicted)


def test_sklearn_tree_models_are_not_scaled() -> None:
    X, y = _synthetic()
    forest = SklearnAlgorithm(
        "sklearn.ensemble.RandomForestRegressor",
        task=Task.regression,
        feature_schema=SCHEMA,
        params={"n_estimators": 2},
    ).fit(X, y)
    ridge = SklearnAlgorithm(
        "sklearn.linear_model.Ridge", task=Task.regression, feature_schema=SCHEMA
    )
    ridge.fit(X, y)
    assert forest.pipeline_ is not None and ridge.pipeline_ is not None
    assert "scale" not in str(forest.pipeline_["preprocess"].transformers_[0][1])
    assert "StandardScaler" in str(ridge.pipeline_["preprocess"].transformers_[0][1])
    assert forest.pipeline_[-1].random_state == 42


def test_multiclass_string_labels_keep_sorted_class_order() -> None:
    X, y = _synthetic()
    labels = np.where(y > 1, "high", np.where(y < -1, "low", "mid")).astype(object)
    for model in (
        LightGBMAlgorithm(
            task=Task.multiclass_classification, feature_schema=SCHEMA, params={"n_estimators": 20}
        ),
        SklearnAlgorithm(
            "sklearn.linear_model.LogisticRegression",
            task=Task.multiclass_classification,
            feature_schema=SCHEMA,
        ),
    ):
        model.fit(X, labels)
        assert model.classes_ == ("high", "low", "mid")
        proba = model.predict_proba(X)
        assert proba.shape == (len(X), 3)
        predicted = model.predict(X)
        np.testing.assert_array_equal(predicted, np.array(model.classes_)[proba.argmax(axis=1)])
        assert (predicted == labels).mean() > 0.8


@pytest.mark.parametrize(
    ("algorithm", "task", "message"),
    [
        (
            "sklearn:sklearn.linear_model.NoSuchModel",
            Task.regression,
            "cannot import 'NoSuchModel'",
        ),
        ("sklearn:no_such_package.Model", Task.regression, "cannot import"),
        ("sklearn:sklearn.linear_model.LogisticRegression", Task.regression, "not a regressor"),
        ("sklearn:sklearn.linear_model.Ridge", Task.binary_classification, "not a classifier"),
    ],
)
def test_bad_algorithms_are_explained(algorithm: str, task: Task, message: str) -> None:
    spec = ModelSpec.model_validate({"task": task, "target": "t", "algorithm": algorithm})
    X, y = _synthetic()
    if task is not Task.regression:
        y = y > 0
    with pytest.raises(TrainingError, match=message):
        build_algorithm(spec, SCHEMA).fit(X, y)


def test_bad_inputs_are_explained() -> None:
    X, y = _synthetic()
    model = LightGBMAlgorithm(task=Task.binary_classification, feature_schema=SCHEMA)
    with pytest.raises(TrainingError, match="not fitted"):
        model.predict(X)
    with pytest.raises(TrainingError, match="one class"):
        model.fit(X, np.ones(len(X), dtype=bool))
    with pytest.raises(TrainingError, match=r"labels not in the training target: \['x'\]"):
        model.fit(X, np.array(["a", "b"] * 200, dtype=object), X_valid=X[:1], y_valid=["x"])
    model.fit(X, y > 0)
    with pytest.raises(TrainingError, match="lacks feature columns \\['when'\\]"):
        model.predict(X.drop(columns="when"))
    with pytest.raises(TrainingError, match="4 columns"):
        model.predict(X.to_numpy()[:, :3])


def test_load_without_manifest_is_explained(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="holds no saved model"):
        BaseAlgorithm.load(tmp_path)
