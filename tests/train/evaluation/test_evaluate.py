"""evaluate(): intervals, determinism, slices, what is skipped and why, JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from conveyor.spec import Direction, Task
from conveyor.train.evaluation import Evaluation, MetricValue, compare_paired, evaluate


def test_intervals_contain_the_point_estimate(cancer: Any, diabetes: Any, iris: Any) -> None:
    evaluations = [
        evaluate(Task.binary_classification, cancer.y, y_pred=cancer.pred, y_score=cancer.score),
        evaluate(Task.regression, diabetes.y, y_pred=diabetes.pred),
        evaluate(Task.multiclass_classification, iris.y, y_pred=iris.pred, y_score=iris.score),
    ]
    for evaluation in evaluations:
        for value in evaluation.metrics.values():
            assert value.low <= value.value <= value.high, value
            assert value.low < value.high, value
            assert value.samples == 200
            assert value.confidence == 0.95
    assert evaluations[0].metric("roc_auc").direction is Direction.maximize
    assert evaluations[1].metric("rmse").direction is Direction.minimize


def _noisy_binary(n: int, seed: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0, 1.5, n))))
    return y, score


def test_intervals_shrink_with_more_rows() -> None:
    widths = []
    for n in (200, 5_000):
        y, score = _noisy_binary(n, seed=1)
        value = evaluate(Task.binary_classification, y, y_score=score).metric("roc_auc")
        widths.append(value.high - value.low)
    assert widths[1] < widths[0] / 3  # the width falls like 1 / sqrt(n): 5x here


def test_higher_confidence_widens_the_interval(cancer: Any) -> None:
    def width(confidence: float) -> float:
        value = evaluate(
            Task.binary_classification, cancer.y, y_score=cancer.score, confidence=confidence
        ).metric("log_loss")
        return value.high - value.low

    assert width(0.99) > width(0.8)


def test_same_seed_same_intervals_other_seed_other_intervals(cancer: Any) -> None:
    def run(seed: int) -> dict[str, Any]:
        return evaluate(
            Task.binary_classification, cancer.y, y_score=cancer.score, seed=seed
        ).to_json()

    assert run(5) == run(5)
    assert run(5)["metrics"]["roc_auc"]["low"] != run(6)["metrics"]["roc_auc"]["low"]
    assert run(5)["metrics"]["roc_auc"]["value"] == run(6)["metrics"]["roc_auc"]["value"]


def test_undefined_resamples_are_skipped_and_counted() -> None:
    # 3 positives in 40 rows: about 5% of the resamples draw none of them.
    y = np.zeros(40, dtype=int)
    y[:3] = 1
    score = np.linspace(0.9, 0.1, 40)
    evaluation = evaluate(Task.binary_classification, y, y_score=score, n_bootstrap=400)
    value = evaluation.metric("roc_auc")
    assert value.value == 1.0
    assert 300 < value.samples < 400
    assert value.low == value.high == 1.0


def test_metrics_the_inputs_do_not_allow_are_listed(cancer: Any) -> None:
    evaluation = evaluate(Task.binary_classification, cancer.y, y_pred=cancer.pred)
    assert "accuracy" in evaluation.metrics
    assert "roc_auc" not in evaluation.metrics
    assert evaluation.skipped["roc_auc"] == "needs y_score"
    with pytest.raises(KeyError, match=r"no metric 'roc_auc'.*needs y_score.*accuracy"):
        evaluation.metric("roc_auc")


def test_one_class_holdout_skips_ranking_metrics() -> None:
    evaluation = evaluate(Task.binary_classification, [1] * 50, y_score=np.linspace(0.2, 1, 50))
    assert "roc_auc" not in evaluation.metrics
    assert evaluation.skipped["roc_auc"] == "y_true holds 1 of the 2 classes"
    assert evaluation.metric("log_loss").value > 0


def test_requested_metrics_only(cancer: Any) -> None:
    evaluation = evaluate(
        Task.binary_classification, cancer.y, y_score=cancer.score, metrics=["roc_auc", "brier"]
    )
    assert list(evaluation.metrics) == ["roc_auc", "brier"]
    with pytest.raises(ValueError, match=r"unknown metric.*'rmse'.*roc_auc"):
        evaluate(Task.binary_classification, cancer.y, y_score=cancer.score, metrics=["rmse"])
    with pytest.raises(ValueError, match="'roc_auc' needs y_score"):
        evaluate(Task.binary_classification, cancer.y, y_pred=cancer.pred, metrics=["roc_auc"])


def test_bad_inputs_are_refused(cancer: Any, iris: Any) -> None:
    with pytest.raises(ValueError, match="y_pred has 3 rows but y_true has 228"):
        evaluate(Task.binary_classification, cancer.y, y_pred=[0, 1, 0])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        evaluate(Task.binary_classification, cancer.y, y_score=cancer.score * 2)
    with pytest.raises(ValueError, match="y_score has 3 columns but there are 2 classes"):
        evaluate(
            Task.multiclass_classification,
            iris.y,
            y_score=iris.score,
            classes=["setosa", "virginica"],
        )
    with pytest.raises(ValueError, match="rows of y_score must sum to 1"):
        evaluate(Task.multiclass_classification, iris.y, y_score=iris.score * 0.9)
    with pytest.raises(ValueError, match="not among the classes"):
        evaluate(Task.binary_classification, cancer.y, y_pred=cancer.pred, classes=["a", "b"])


def test_string_labels_and_explicit_positive_class() -> None:
    y = np.array(["spam", "ham", "ham", "spam", "ham", "spam"])
    p_spam = np.array([0.9, 0.2, 0.4, 0.6, 0.7, 0.3])
    evaluation = evaluate(
        Task.binary_classification, y, y_score=p_spam, classes=["ham", "spam"], n_bootstrap=0
    )
    # spam rows score 0.9, 0.6, 0.3; ham rows 0.2, 0.4, 0.7: 6 of 9 pairs ordered right.
    assert evaluation.metric("roc_auc").value == pytest.approx(6 / 9)
    assert evaluation.metric("roc_auc").samples == 0
    assert math.isnan(evaluation.metric("roc_auc").low)


def test_slices_per_value_with_small_ones_skipped(cancer: Any) -> None:
    n = len(cancer.y)
    size = np.where(np.arange(n) < n - 20, np.where(np.arange(n) % 2 == 0, "even", "odd"), "rare")
    evaluation = evaluate(
        Task.binary_classification,
        cancer.y,
        y_score=cancer.score,
        slices={"size": list(size)},
    )
    groups = evaluation.slices["size"]
    assert set(groups) == {"even", "odd"}
    assert evaluation.skipped["slice size=rare"] == "20 rows, fewer than min_slice_rows=30"
    for key, entry in groups.items():
        rows = np.flatnonzero(size == key)
        assert entry["rows"] == len(rows)
        auc = entry["roc_auc"]
        assert isinstance(auc, MetricValue)
        alone = evaluate(Task.binary_classification, cancer.y[rows], y_score=cancer.score[rows])
        assert auc.value == alone.metric("roc_auc").value
        assert auc.low <= auc.value <= auc.high
        assert auc.samples == 100  # slices use fewer resamples by default
    smaller = evaluate(
        Task.binary_classification,
        cancer.y,
        y_score=cancer.score,
        slices={"size": list(size)},
        min_slice_rows=10,
    )
    assert set(smaller.slices["size"]) == {"even", "odd", "rare"}
    with pytest.raises(ValueError, match="slice column 'size' has 3 values for 228 rows"):
        evaluate(Task.binary_classification, cancer.y, y_score=cancer.score, slices={"size": "abc"})


def test_json_round_trip(cancer: Any) -> None:
    evaluation = evaluate(
        Task.binary_classification,
        cancer.y,
        y_score=cancer.score,
        slices={"half": ["a", "b"] * 114},
    )
    text = json.dumps(evaluation.to_json(), allow_nan=False)
    again = Evaluation.from_json(json.loads(text))
    assert again == evaluation
    empty = evaluate(Task.binary_classification, cancer.y, y_score=cancer.score, n_bootstrap=0)
    data = json.loads(json.dumps(empty.to_json(), allow_nan=False))
    assert data["metrics"]["roc_auc"]["low"] is None


def test_paired_difference_is_narrower_than_separate_intervals(
    cancer: Any, weak_cancer: Any
) -> None:
    assert (cancer.y == weak_cancer.y).all()  # the same holdout
    paired = compare_paired(
        Task.binary_classification, cancer.y, weak_cancer.score, cancer.score, "roc_auc"
    )
    new = evaluate(Task.binary_classification, cancer.y, y_score=weak_cancer.score)
    old = evaluate(Task.binary_classification, cancer.y, y_score=cancer.score)
    assert paired.value == pytest.approx(new.metric("roc_auc").value - old.metric("roc_auc").value)
    assert paired.low <= paired.value <= paired.high < 0  # clearly worse
    assert paired.samples == 1000
    separate = (new.metric("roc_auc").high - new.metric("roc_auc").low) + (
        old.metric("roc_auc").high - old.metric("roc_auc").low
    )
    assert paired.high - paired.low < separate
    same = compare_paired(Task.binary_classification, cancer.y, cancer.pred, cancer.pred, "f1")
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)


def test_paired_regression_by_values(diabetes: Any) -> None:
    baseline = np.full_like(diabetes.y, diabetes.y.mean())
    paired = compare_paired(Task.regression, diabetes.y, diabetes.pred, baseline, "rmse")
    assert paired.direction is Direction.minimize
    assert paired.high < 0  # the model beats predicting the mean
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        compare_paired(Task.regression, diabetes.y, diabetes.pred, baseline, "auc")


def test_bootstrap_is_vectorised_on_100k_rows() -> None:
    # 100k rows x 200 resamples: one scikit-learn call per resample and metric would take
    # minutes; the count-matrix bootstrap finishes in seconds (no timing asserted: the
    # machine may be loaded, and a timeout of the suite would show a regression).
    y, score = _noisy_binary(100_000, seed=2)
    evaluation = evaluate(
        Task.binary_classification,
        y,
        y_score=score,
        metrics=["roc_auc", "accuracy", "log_loss", "brier"],
    )
    auc = evaluation.metric("roc_auc")
    assert auc.samples == 200
    assert auc.high - auc.low < 0.01
    assert auc.low <= auc.value <= auc.high
