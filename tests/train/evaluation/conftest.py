"""Real models on the data sets scikit-learn ships (no download): one per task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


@dataclass(frozen=True)
class Holdout:
    """A fitted model's predictions on its test split."""

    x: np.ndarray[Any, Any]
    y: np.ndarray[Any, Any]
    pred: np.ndarray[Any, Any]
    score: np.ndarray[Any, Any] | None
    model: Any


def _classifier(x: Any, y: Any, c: float = 1.0) -> Holdout:
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.4, random_state=0, stratify=y
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    model.fit(x_train, y_train)
    proba = model.predict_proba(x_test)
    score = proba[:, 1] if proba.shape[1] == 2 else proba
    return Holdout(x_test, y_test, model.predict(x_test), score, model)


@pytest.fixture(scope="session")
def cancer() -> Holdout:
    """Breast cancer (binary, 228 test rows), logistic regression."""
    x, y = load_breast_cancer(return_X_y=True)
    return _classifier(x, y)


@pytest.fixture(scope="session")
def weak_cancer() -> Holdout:
    """The same split with a model that sees only two features (worse)."""
    x, y = load_breast_cancer(return_X_y=True)
    return _classifier(x[:, [0, 1]], y, c=0.01)


@pytest.fixture(scope="session")
def iris() -> Holdout:
    """Iris (three classes, 60 test rows), logistic regression on two features (not perfect)."""
    x, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]  # string labels on purpose
    return _classifier(x[:, :2], names)


@pytest.fixture(scope="session")
def diabetes() -> Holdout:
    """Diabetes progression (regression, 177 test rows), ridge regression."""
    x, y = load_diabetes(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.4, random_state=0)
    model = Ridge(alpha=0.1).fit(x_train, y_train)
    return Holdout(x_test, y_test, model.predict(x_test), None, model)
