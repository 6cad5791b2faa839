"""evaluation_plots(): valid PNGs for every task, fast and reproducible on a million rows."""

from __future__ import annotations

import io
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from matplotlib.image import imread
from sklearn.metrics import (
    auc,
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from conveyor.spec import Task
from conveyor.train.report import evaluation_plots
from conveyor.train.report._plots import MAX_SCATTER_POINTS, _rates, _sample

from .conftest import Holdout

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(data: bytes) -> None:
    """A real, non-blank PNG of a sensible size."""
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 8_000
    width, height = struct.unpack(">II", data[16:24])
    assert 300 <= width <= 2_000 and 300 <= height <= 2_000
    pixels = imread(io.BytesIO(data), format="png")
    assert pixels.shape[:2] == (height, width)
    assert pixels[..., :3].std() > 0.05  # something was drawn on the white canvas


def test_binary_plots(cancer_lightgbm: Holdout) -> None:
    h = cancer_lightgbm
    plots = evaluation_plots(
        Task.binary_classification, h.y, y_pred=h.pred, y_score=h.score, classes=h.classes
    )
    assert set(plots) == {
        "confusion_matrix.png",
        "roc_curve.png",
        "pr_curve.png",
        "calibration.png",
    }
    for data in plots.values():
        assert_png(data)


def test_binary_plots_from_scores_only(cancer_lightgbm: Holdout) -> None:
    h = cancer_lightgbm
    with_pred = evaluation_plots(
        "binary_classification", h.y, y_pred=h.pred, y_score=h.score, classes=h.classes
    )
    without = evaluation_plots(
        "binary_classification", h.y, y_pred=None, y_score=h.score, classes=h.classes
    )
    # The labels a classifier predicts are the ones derived from its probabilities.
    assert without == with_pred


def test_multiclass_plots(iris_forest: Holdout) -> None:
    h = iris_forest
    plots = evaluation_plots(
        Task.multiclass_classification, h.y, y_pred=h.pred, y_score=h.score, classes=h.classes
    )
    assert set(plots) == {"confusion_matrix.png", "roc_curve.png", "pr_curve.png"}
    for data in plots.values():
        assert_png(data)


def test_confusion_matrix_without_scores(iris_forest: Holdout) -> None:
    plots = evaluation_plots(Task.multiclass_classification, iris_forest.y, y_pred=iris_forest.pred)
    assert list(plots) == ["confusion_matrix.png"]
    assert_png(plots["confusion_matrix.png"])


def test_labels_the_font_cannot_draw_do_not_warn(iris_forest: Holdout) -> None:
    h = iris_forest
    renamed = {"setosa": "猫 setosa", "versicolor": "🌸 versicolor", "virginica": "virginica"}
    y = np.array([renamed[label] for label in h.y])
    pred = np.array([renamed[label] for label in h.pred])
    classes = [renamed[label] for label in h.classes or ()]
    # pytest turns warnings into errors: a missing-glyph warning would fail here.
    plots = evaluation_plots(
        Task.multiclass_classification, y, y_pred=pred, y_score=h.score, classes=classes
    )
    assert_png(plots["confusion_matrix.png"])


def test_threads_draw_the_same_plots(diabetes_ridge: Holdout) -> None:
    def draw() -> dict[str, bytes]:
        return evaluation_plots(Task.regression, diabetes_ridge.y, y_pred=diabetes_ridge.pred)

    expected = draw()
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(draw) for _ in range(3)]
        assert all(future.result() == expected for future in futures)


def test_regression_plots(diabetes_ridge: Holdout) -> None:
    h = diabetes_ridge
    plots = evaluation_plots(Task.regression, h.y, y_pred=h.pred)
    assert set(plots) == {"residuals.png", "predicted_vs_actual.png"}
    for data in plots.values():
        assert_png(data)


def test_inconsistent_inputs_raise(cancer_lightgbm: Holdout) -> None:
    h = cancer_lightgbm
    with pytest.raises(ValueError, match="needs y_pred or y_score"):
        evaluation_plots(Task.binary_classification, h.y, y_pred=None)
    with pytest.raises(ValueError, match="rows"):
        evaluation_plots(Task.binary_classification, h.y, y_pred=h.pred[:-1])


@pytest.mark.parametrize("seed", [0, 1])
def test_curves_match_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.random(5_000) < 0.3
    score = np.round(np.clip(0.25 * truth + rng.random(5_000) * 0.75, 0, 1), 2)  # with ties
    rates = _rates(truth, score)
    fpr, tpr, _ = roc_curve(truth, score, drop_intermediate=False)
    precision, recall, _ = precision_recall_curve(truth, score)
    np.testing.assert_allclose(rates.fpr, fpr)
    np.testing.assert_allclose(rates.tpr, tpr)
    np.testing.assert_allclose(rates.precision[1:], precision[:-1][::-1])
    np.testing.assert_allclose(rates.recall[1:], recall[:-1][::-1])
    assert rates.auc == pytest.approx(roc_auc_score(truth, score))
    assert rates.auc == pytest.approx(auc(fpr, tpr))
    assert rates.average_precision == pytest.approx(average_precision_score(truth, score))


def test_scatter_sample_is_bounded_and_reproducible() -> None:
    rows = _sample(1_000_000)
    assert len(rows) == MAX_SCATTER_POINTS == 20_000
    assert len(np.unique(rows)) == len(rows) and rows.max() < 1_000_000
    np.testing.assert_array_equal(rows, _sample(1_000_000))
    np.testing.assert_array_equal(_sample(500), np.arange(500))


def test_a_million_rows_give_reproducible_plots() -> None:
    rng = np.random.default_rng(0)
    actual = rng.normal(size=1_000_000)
    predicted = actual + rng.normal(scale=0.3, size=len(actual))
    first = evaluation_plots(Task.regression, actual, y_pred=predicted)
    assert first == evaluation_plots(Task.regression, actual, y_pred=predicted)
    for data in first.values():
        assert_png(data)
