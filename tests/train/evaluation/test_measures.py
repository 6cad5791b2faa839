"""Every metric equals scikit-learn's, on the full holdout and on single resamples."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from conveyor.spec import TASK_METRICS, Task
from conveyor.train.evaluation import evaluate
from conveyor.train.evaluation._inputs import prepare
from conveyor.train.evaluation._measures import MEASURES, known_metrics


def _sklearn(task: Task, name: str, y: Any, pred: Any, score: Any, classes: Any) -> float:
    """scikit-learn's value, written out independently of the implementation."""
    positive = {"pos_label": classes[1]} if task is Task.binary_classification else {}
    table = {
        "accuracy": lambda: skm.accuracy_score(y, pred),
        "balanced_accuracy": lambda: skm.balanced_accuracy_score(y, pred),
        "precision": lambda: skm.precision_score(y, pred, zero_division=0.0, **positive),
        "recall": lambda: skm.recall_score(y, pred, zero_division=0.0, **positive),
        "f1": lambda: skm.f1_score(y, pred, zero_division=0.0, **positive),
        "f1_macro": lambda: skm.f1_score(y, pred, average="macro", zero_division=0.0),
        "f1_weighted": lambda: skm.f1_score(y, pred, average="weighted", zero_division=0.0),
        "roc_auc": lambda: skm.roc_auc_score(y, score),
        "roc_auc_ovr": lambda: skm.roc_auc_score(y, score, multi_class="ovr", labels=classes),
        "pr_auc": lambda: skm.average_precision_score(y, score, **positive),
        "log_loss": lambda: skm.log_loss(y, score, labels=classes),
        "brier": lambda: skm.brier_score_loss(y, score, **positive),
        "rmse": lambda: skm.root_mean_squared_error(y, pred),
        "mae": lambda: skm.mean_absolute_error(y, pred),
        "mape": lambda: skm.mean_absolute_percentage_error(y, pred),
        "median_ae": lambda: skm.median_absolute_error(y, pred),
        "r2": lambda: skm.r2_score(y, pred),
    }
    return float(table[name]())


def _ece(y_hit: Any, conf: Any) -> float:
    """Expected calibration error from scikit-learn's reliability curve (10 uniform bins)."""
    prob_true, prob_pred = calibration_curve(y_hit, conf, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], conf), minlength=10)
    weights = counts[counts > 0] / len(conf)
    return float(np.sum(weights * np.abs(prob_true - prob_pred)))


CASES = ["cancer", "iris", "diabetes"]
TASKS = {
    "cancer": Task.binary_classification,
    "iris": Task.multiclass_classification,
    "diabetes": Task.regression,
}


@pytest.mark.parametrize("case", CASES)
def test_full_sample_values_equal_sklearn(case: str, request: pytest.FixtureRequest) -> None:
    holdout = request.getfixturevalue(case)
    task = TASKS[case]
    evaluation = evaluate(task, holdout.y, y_pred=holdout.pred, y_score=holdout.score)
    classes = list(getattr(holdout.model, "classes_", []))
    assert set(TASK_METRICS[task]) <= set(evaluation.metrics)  # every spec metric is computed
    for name in (m for m in TASK_METRICS[task] if m != "ece"):  # ece: own test below
        expected = _sklearn(task, name, holdout.y, holdout.pred, holdout.score, classes)
        assert evaluation.metric(name).value == pytest.approx(expected, rel=1e-12), name


@pytest.mark.parametrize("case", CASES)
def test_vectorised_resamples_equal_sklearn_on_the_drawn_rows(
    case: str, request: pytest.FixtureRequest
) -> None:
    holdout = request.getfixturevalue(case)
    task = TASKS[case]
    prepared = prepare(task, holdout.y, holdout.pred, holdout.score)
    rng = np.random.default_rng(7)
    n = len(holdout.y)
    rows = [rng.integers(0, n, n) for _ in range(3)]
    counts = np.stack([np.bincount(r, minlength=n) for r in rows]).astype(np.float64)
    classes = list(getattr(holdout.model, "classes_", []))
    for name in (m for m in TASK_METRICS[task] if m != "ece"):  # ece: own test below
        batch = MEASURES[name].batch(prepared, counts)
        ones = MEASURES[name].batch(prepared, np.ones((1, n)))
        full = _sklearn(task, name, holdout.y, holdout.pred, holdout.score, classes)
        assert ones[0] == pytest.approx(full, rel=1e-9), name
        for r, drawn in enumerate(rows):
            score = None if holdout.score is None else holdout.score[drawn]
            expected = _sklearn(task, name, holdout.y[drawn], holdout.pred[drawn], score, classes)
            assert batch[r] == pytest.approx(expected, rel=1e-9), (name, r)


def test_rank_auc_handles_ties_like_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    score = np.round(rng.random(500) * 0.5 + y * 0.2, 1)  # few distinct values: many ties
    evaluation = evaluate(Task.binary_classification, y, y_score=score, n_bootstrap=0)
    assert evaluation.metric("roc_auc").value == pytest.approx(skm.roc_auc_score(y, score))
    prepared = prepare(Task.binary_classification, y, y_score=score)
    for name, expected in (
        ("roc_auc", skm.roc_auc_score(y, score)),
        ("pr_auc", skm.average_precision_score(y, score)),
    ):
        assert MEASURES[name].batch(prepared, np.ones((1, 500)))[0] == pytest.approx(expected)


def test_ece_matches_the_calibration_curve(cancer: Any, iris: Any) -> None:
    binary = evaluate(Task.binary_classification, cancer.y, y_score=cancer.score)
    assert binary.metric("ece").value == pytest.approx(_ece(cancer.y, cancer.score))
    assert binary.metric("ece").value > 0
    multi = evaluate(
        Task.multiclass_classification, iris.y, y_score=iris.score, classes=iris.model.classes_
    )
    top = iris.score.argmax(axis=1)
    hit = (iris.model.classes_[top] == iris.y).astype(int)
    assert multi.metric("ece").value == pytest.approx(_ece(hit, iris.score.max(axis=1)))


def test_ece_of_a_hand_made_case() -> None:
    # Bin [0.8, 0.9]: 4 rows at 0.85, 2 positive -> gap 0.35; bin [0.1, 0.2]: 4 at 0.15, 0 -> 0.15.
    y = [1, 1, 0, 0, 0, 0, 0, 0]
    score = [0.85] * 4 + [0.15] * 4
    evaluation = evaluate(Task.binary_classification, y, y_score=score, metrics=["ece"])
    assert evaluation.metric("ece").value == pytest.approx((4 * 0.35 + 4 * 0.15) / 8)


def test_labels_derived_from_scores_are_the_models_predictions(cancer: Any, iris: Any) -> None:
    binary = evaluate(Task.binary_classification, cancer.y, y_score=cancer.score)
    assert binary.metric("accuracy").value == skm.accuracy_score(cancer.y, cancer.pred)
    multi = evaluate(
        Task.multiclass_classification, iris.y, y_score=iris.score, classes=iris.model.classes_
    )
    assert multi.metric("f1_macro").value == pytest.approx(
        skm.f1_score(iris.y, iris.pred, average="macro")
    )


def test_known_metrics_cover_the_spec() -> None:
    for task in Task:
        assert set(TASK_METRICS[task]) <= set(known_metrics(task))
        assert set(known_metrics(task)) <= set(MEASURES)


def test_median_of_an_even_number_of_rows_averages_the_middle_two(diabetes: Any) -> None:
    y, pred = diabetes.y[:-1], diabetes.pred[:-1]  # 176 rows
    prepared = prepare(Task.regression, y, pred)
    rng = np.random.default_rng(11)
    drawn = rng.integers(0, len(y), len(y))
    counts = np.stack([np.ones(len(y)), np.bincount(drawn, minlength=len(y))]).astype(float)
    values = MEASURES["median_ae"].batch(prepared, counts)
    assert values[0] == pytest.approx(skm.median_absolute_error(y, pred))
    assert values[1] == pytest.approx(skm.median_absolute_error(y[drawn], pred[drawn]))
