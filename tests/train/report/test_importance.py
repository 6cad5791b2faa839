"""feature_importance(): per original feature column, summed back from the model's inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.spec import Task
from conveyor.train.algorithms import LightGBMAlgorithm, SklearnAlgorithm
from conveyor.train.report import feature_importance

from .conftest import CANCER_FEATURES, Holdout, cancer_frame, cancer_schema


def assert_shares(importance: dict[str, float] | None, columns: list[str]) -> dict[str, float]:
    assert importance is not None
    assert set(importance) == set(columns)
    assert sum(importance.values()) == pytest.approx(1.0)
    assert all(share >= 0 for share in importance.values())
    assert list(importance.values()) == sorted(importance.values(), reverse=True)
    return importance


def test_one_hot_columns_are_summed_back_to_their_feature(cancer_logistic: Holdout) -> None:
    model = cancer_logistic.model
    importance = assert_shares(feature_importance(model), list(cancer_schema()))
    assert model.pipeline_ is not None
    names = model.pipeline_[0].get_feature_names_out()
    coef = np.abs(model.pipeline_[-1].coef_[0])
    band = [i for i, name in enumerate(names) if name.startswith("cat__size band_")]
    assert len(band) == 3  # small, medium, large
    total = coef.sum()
    assert importance["size band"] == pytest.approx(coef[band].sum() / total)
    for feature in CANCER_FEATURES:
        (column,) = [i for i, name in enumerate(names) if name == f"num__{feature}"]
        assert importance[feature] == pytest.approx(coef[column] / total)


def test_lightgbm_uses_total_gain(cancer_lightgbm: Holdout) -> None:
    model = cancer_lightgbm.model
    importance = assert_shares(feature_importance(model), list(cancer_schema()))
    assert model.pipeline_ is not None
    gain = model.pipeline_[-1].booster_.feature_importance(importance_type="gain")
    # LightGBM's inputs: the numeric features, then the ordinal-coded category.
    expected = dict(zip([*CANCER_FEATURES, "size band"], gain / gain.sum(), strict=True))
    assert importance == pytest.approx(expected)


def test_datetime_parts_and_forest_importances() -> None:
    x, y = cancer_frame()
    rng = np.random.default_rng(0)
    x["seen at"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 900, len(x)), "D")
    schema: dict[str, Any] = {**cancer_schema(), "seen at": "datetime"}
    model = SklearnAlgorithm(
        "sklearn.ensemble.RandomForestClassifier",
        task=Task.binary_classification,
        feature_schema=schema,
        params={"n_estimators": 20},
        n_jobs=1,
    ).fit(x, y)
    importance = assert_shares(feature_importance(model), list(schema))
    assert model.pipeline_ is not None
    forest = model.pipeline_[-1].feature_importances_
    names = model.pipeline_[0].get_feature_names_out()
    parts = [i for i, name in enumerate(names) if name.startswith("dt__seen at_")]
    assert len(parts) == 4  # year, month, day of week, hour
    assert importance["seen at"] == pytest.approx(forest[parts].sum() / forest.sum())


def test_regression_coefficients(diabetes_ridge: Holdout) -> None:
    importance = assert_shares(
        feature_importance(diabetes_ridge.model), list(diabetes_ridge.model.feature_schema)
    )
    assert importance["sex"] > 0  # the two one-hot columns of sex, summed


def test_models_without_importance_give_none(cancer_lightgbm: Holdout) -> None:
    x, y = cancer_frame()
    neighbours = SklearnAlgorithm(
        "sklearn.neighbors.KNeighborsClassifier",
        task=Task.binary_classification,
        feature_schema=cancer_schema(),
    ).fit(x, y)
    assert feature_importance(neighbours) is None
    unfitted = LightGBMAlgorithm(task=Task.binary_classification, feature_schema=cancer_schema())
    assert feature_importance(unfitted) is None


def test_xgboost_uses_total_gain() -> None:
    from conveyor.train.algorithms import XGBoostAlgorithm

    x, y = cancer_frame()
    model = XGBoostAlgorithm(
        task=Task.binary_classification,
        feature_schema=cancer_schema(),
        params={"n_estimators": 30, "max_depth": 3},
        n_jobs=1,
    ).fit(x, y)
    importance = assert_shares(feature_importance(model), list(cancer_schema()))
    assert model.pipeline_ is not None
    scores = model.pipeline_[-1].get_booster().get_score(importance_type="total_gain")
    gain = np.array([scores.get(f"f{i}", 0.0) for i in range(len(cancer_schema()))])
    expected = dict(zip([*CANCER_FEATURES, "size band"], gain / gain.sum(), strict=True))
    assert importance == pytest.approx(expected)
