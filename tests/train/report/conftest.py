"""Real models trained on the data sets scikit-learn ships, and their test-set evaluations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.model_selection import train_test_split

from conveyor.spec import Task
from conveyor.train.algorithms import BaseAlgorithm, LightGBMAlgorithm, SklearnAlgorithm
from conveyor.train.evaluation import Evaluation, evaluate

CANCER_FEATURES = ["mean radius", "mean texture", "mean smoothness", "worst concavity"]


@dataclass(frozen=True)
class Holdout:
    """A fitted model, its test rows and what it predicts for them."""

    model: BaseAlgorithm
    x: pd.DataFrame
    y: np.ndarray[Any, Any]
    pred: np.ndarray[Any, Any]
    score: np.ndarray[Any, Any] | None

    @property
    def classes(self) -> tuple[Any, ...] | None:
        return self.model.classes_


def _fit(model: BaseAlgorithm, x: pd.DataFrame, y: np.ndarray[Any, Any]) -> Holdout:
    stratify = y if model.is_classifier else None
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.4, random_state=0, stratify=stratify
    )
    model.fit(x_train, y_train)
    score = model.predict_proba(x_test) if model.is_classifier else None
    return Holdout(model, x_test.reset_index(drop=True), y_test, model.predict(x_test), score)


def cancer_frame() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """Four numeric features and a categorical size band; labels are strings."""
    data = load_breast_cancer(as_frame=True)
    x = data.data[CANCER_FEATURES].copy()
    x["size band"] = pd.qcut(data.data["mean area"], 3, labels=["small", "medium", "large"])
    x["size band"] = x["size band"].astype(str)
    y = np.where(data.target.to_numpy() == 1, "benign", "malignant")
    return x, y


def cancer_schema() -> dict[str, Any]:
    return {**dict.fromkeys(CANCER_FEATURES, "numeric"), "size band": "categorical"}


@pytest.fixture(scope="session")
def cancer_lightgbm() -> Holdout:
    """Binary: LightGBM on breast cancer (228 test rows)."""
    x, y = cancer_frame()
    model = LightGBMAlgorithm(
        task=Task.binary_classification,
        feature_schema=cancer_schema(),
        params={"n_estimators": 40, "learning_rate": 0.1},
        n_jobs=1,
    )
    return _fit(model, x, y)


@pytest.fixture(scope="session")
def cancer_logistic() -> Holdout:
    """Binary: logistic regression on the same split, the size band one-hot encoded."""
    x, y = cancer_frame()
    model = SklearnAlgorithm(
        "sklearn.linear_model.LogisticRegression",
        task=Task.binary_classification,
        feature_schema=cancer_schema(),
        params={"max_iter": 500},
    )
    return _fit(model, x, y)


@pytest.fixture(scope="session")
def iris_forest() -> Holdout:
    """Multiclass: a random forest on iris, string labels (60 test rows)."""
    data = load_iris(as_frame=True)
    y = np.array(["setosa", "versicolor", "virginica"])[data.target.to_numpy()]
    model = SklearnAlgorithm(
        "sklearn.ensemble.RandomForestClassifier",
        task=Task.multiclass_classification,
        feature_schema=dict.fromkeys(data.data.columns, "numeric"),
        params={"n_estimators": 30, "max_depth": 3},
        n_jobs=1,
    )
    return _fit(model, data.data, y)


@pytest.fixture(scope="session")
def diabetes_ridge() -> Holdout:
    """Regression: ridge on diabetes progression, sex as a category (177 test rows)."""
    data = load_diabetes(as_frame=True, scaled=False)
    x = data.data.copy()
    x["sex"] = np.where(x["sex"] == 1, "female", "male")
    schema = {name: "categorical" if name == "sex" else "numeric" for name in x.columns}
    model = SklearnAlgorithm(
        "sklearn.linear_model.Ridge",
        task=Task.regression,
        feature_schema=schema,
        params={"alpha": 1.0},
    )
    return _fit(model, x, data.target.to_numpy())


def noisy_site(holdout: Holdout) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """``(labels, site)``: half the test rows come from a site whose labels are 40% wrong.

    The model never saw the site, so it is clearly worse there: the slice a card must flag.
    """
    rng = np.random.default_rng(1)
    site = rng.choice(np.array(["north", "south"]), size=len(holdout.y))
    labels = holdout.y.copy()
    flip = (site == "south") & (rng.random(len(labels)) < 0.4)
    labels[flip] = np.where(labels[flip] == "benign", "malignant", "benign")
    return labels, site


@pytest.fixture(scope="session")
def cancer_evaluation(cancer_lightgbm: Holdout) -> Evaluation:
    """The LightGBM model's evaluation, sliced by the noisy site and by the size band."""
    labels, site = noisy_site(cancer_lightgbm)
    return evaluate(
        Task.binary_classification,
        labels,
        y_score=cancer_lightgbm.score,
        classes=cancer_lightgbm.classes,
        slices={"site": site, "size band": cancer_lightgbm.x["size band"]},
        n_bootstrap=200,
    )
