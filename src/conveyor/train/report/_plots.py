"""Evaluation plots as PNG bytes, drawn on private matplotlib figures (no pyplot state)."""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from conveyor.spec import Task
from conveyor.train.evaluation import ECE_BINS
from conveyor.train.evaluation._inputs import Prepared, prepare
from conveyor.train.evaluation._results import format_number

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

__all__ = ["MAX_CURVE_POINTS", "MAX_SCATTER_POINTS", "evaluation_plots"]

MAX_SCATTER_POINTS: Final = 20_000
"""Scatter plots draw at most this many rows, picked with a fixed seed."""

MAX_CURVE_POINTS: Final = 2_000
"""ROC and precision-recall curves are thinned to about this many vertices."""

MAX_CURVE_CLASSES: Final = 10
"""Multiclass one-vs-rest curves are drawn up to this many classes."""

MAX_ANNOTATED_CLASSES: Final = 20
"""Confusion matrices with more classes show colours only, no numbers."""

_SEED: Final = 0
_DPI: Final = 100
_BLUE, _RED, _GREY = "#0969da", "#cf222e", "#8c959f"


def evaluation_plots(
    task: Task | str,
    y_true: Any,
    *,
    y_pred: Any,
    y_score: Any = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, bytes]:
    """PNG plots of a model's holdout predictions, by file name.

    Classification: ``confusion_matrix.png`` (counts and row shares); with ``y_score`` also
    ``roc_curve.png`` and ``pr_curve.png`` (one-vs-rest per class for multiclass, up to
    :data:`MAX_CURVE_CLASSES` classes) and, for binary tasks, ``calibration.png`` (a
    reliability diagram over the same bins as the ``ece`` metric). Regression:
    ``residuals.png`` (residuals against predictions, and their histogram) and
    ``predicted_vs_actual.png``.

    Scatter plots draw at most :data:`MAX_SCATTER_POINTS` rows, chosen with a fixed seed,
    so the same inputs give the same images; histograms and curves use every row. Each plot
    is drawn on its own :class:`matplotlib.figure.Figure` with the Agg canvas, so this is
    safe to call from several threads and leaves no global matplotlib state behind.

    Args:
        task: the learning task.
        y_true: true labels or values, shape ``(n,)``.
        y_pred: predicted labels or values, shape ``(n,)``; for classification it may be
            None when ``y_score`` is given (the most probable class is used).
        y_score: class probabilities as for :func:`conveyor.train.evaluation.evaluate`.
        classes: the class labels in the column order of ``y_score``.

    Raises:
        ValueError: inconsistent inputs (as :func:`conveyor.train.evaluation.evaluate`).
    """
    task = Task(task)
    p = prepare(task, y_true, y_pred, y_score, classes)
    if p.pred is None:
        raise ValueError("evaluation_plots needs y_pred or y_score")
    if task is Task.regression:
        return {
            "residuals.png": _residuals(p.y, p.pred),
            "predicted_vs_actual.png": _predicted_vs_actual(p.y, p.pred),
        }
    plots = {"confusion_matrix.png": _confusion_matrix(p, p.pred)}
    score = p.score
    if score is not None and (score.ndim == 1 or len(p.classes) <= MAX_CURVE_CLASSES):
        curves = _one_vs_rest(p, score)
        if curves:
            plots["roc_curve.png"] = _roc(curves)
            plots["pr_curve.png"] = _pr(curves)
    if score is not None and score.ndim == 1:
        plots["calibration.png"] = _calibration(p.y == 1, score, p.classes[1])
    return plots


# -- drawing helpers -------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _style(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, color="#d0d7de", linewidth=0.5)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _sample(n: int) -> NDArray[np.intp]:
    """Sorted row positions of at most :data:`MAX_SCATTER_POINTS` rows, always the same."""
    import numpy as np

    if n <= MAX_SCATTER_POINTS:
        return np.arange(n)
    rng = np.random.default_rng(_SEED)
    return np.sort(rng.choice(n, size=MAX_SCATTER_POINTS, replace=False))


def _thin(x: NDArray[Any], y: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    """About :data:`MAX_CURVE_POINTS` evenly spaced vertices of a curve, ends kept."""
    import numpy as np

    if len(x) <= MAX_CURVE_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, MAX_CURVE_POINTS).round().astype(np.intp))
    return x[keep], y[keep]


@functools.cache
def _drawable() -> frozenset[int]:
    """The code points the default font can draw."""
    from matplotlib import font_manager

    font = font_manager.get_font(font_manager.findfont(font_manager.FontProperties()))
    return frozenset(font.get_charmap())


def _label(value: Any) -> str:
    """A class label as drawn: shortened, characters the font lacks shown as ``?``.

    Replacing them here, rather than silencing matplotlib's missing-glyph warning, keeps the
    process-wide warning filters untouched (``warnings.catch_warnings`` is not thread-safe).
    """
    text = str(value)
    text = text if len(text) <= 24 else text[:21] + "..."
    drawable = _drawable()
    return "".join(c if ord(c) in drawable or c.isspace() else "?" for c in text)


# -- classification --------------------------------------------------------------------------


def _confusion_matrix(p: Prepared, pred: NDArray[np.intp]) -> bytes:
    import numpy as np

    k = len(p.classes)
    counts = np.bincount(p.y * k + pred, minlength=k * k).reshape(k, k)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    size = min(3.2 + 0.55 * k, 14.0)
    figure = _figure(size + 1.2, size)
    ax = figure.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    labels = [_label(c) for c in p.classes]
    tilt = k > 3
    ax.set_xticks(range(k), labels, rotation=45 if tilt else 0, ha="right" if tilt else "center")
    ax.set_yticks(range(k), labels)
    ax.set_title(f"Confusion matrix ({p.n:,} rows)", fontsize=11, loc="left")
    ax.set_xlabel("predicted class", fontsize=9)
    ax.set_ylabel("true class", fontsize=9)
    ax.tick_params(labelsize=8)
    if k <= MAX_ANNOTATED_CLASSES:
        fontsize = 9 if k <= 6 else 7
        for row in range(k):
            for column in range(k):
                share = float(shares[row, column])
                ax.text(
                    column,
                    row,
                    f"{int(counts[row, column]):,}\n{share:.1%}",
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color="white" if share > 0.55 else "#1f2328",
                )
    return _png(figure)


def _one_vs_rest(p: Prepared, score: NDArray[np.float64]) -> list[tuple[str, _Rates]]:
    """The positive class's curves, or one per class that has both outcomes (multiclass)."""
    if score.ndim == 1:
        truth = p.y == 1
        return [(_label(p.classes[1]), _rates(truth, score))] if 0 < truth.sum() < p.n else []
    curves = []
    for code, name in enumerate(p.classes):
        truth = p.y == code
        if 0 < int(truth.sum()) < p.n:
            curves.append((_label(name), _rates(truth, score[:, code])))
    return curves


@dataclass(frozen=True)
class _Rates:
    """A ROC and a precision-recall curve with their areas, from one sort of the scores."""

    fpr: NDArray[np.float64]
    tpr: NDArray[np.float64]
    precision: NDArray[np.float64]
    recall: NDArray[np.float64]
    auc: float
    average_precision: float
    prevalence: float


def _rates(truth: NDArray[np.bool_], score: NDArray[np.float64]) -> _Rates:
    """What scikit-learn's ``roc_curve``, ``precision_recall_curve``, ``auc`` and
    ``average_precision_score`` give, with one (unstable, fast) sort instead of one each."""
    import numpy as np

    order = np.argsort(-score)
    ranked = score[order]
    # The last row of each group of tied scores: one threshold per distinct score.
    ends = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    tps = np.cumsum(truth[order], dtype=np.float64)[ends]
    fps = (ends + 1.0) - tps
    positives, negatives = tps[-1], fps[-1]
    tpr = np.r_[0.0, tps / positives]
    fpr = np.r_[0.0, fps / negatives]
    precision = np.r_[1.0, tps / (tps + fps)]
    recall = tpr
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    average_precision = float(np.sum(np.diff(recall) * precision[1:]))
    return _Rates(fpr, tpr, precision, recall, auc, average_precision, positives / len(score))


def _roc(curves: list[tuple[str, _Rates]]) -> bytes:
    figure = _figure(5.2, 4.6)
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], color=_GREY, linestyle="--", linewidth=1, label="chance")
    for name, rates in curves:
        x, y = _thin(rates.fpr, rates.tpr)
        ax.plot(x, y, linewidth=1.6, label=f"{name} (AUC {format_number(rates.auc)})")
    _style(ax, "ROC curve", "false positive rate", "true positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(fontsize=8, loc="lower right")
    return _png(figure)


def _pr(curves: list[tuple[str, _Rates]]) -> bytes:
    figure = _figure(5.2, 4.6)
    ax = figure.add_subplot()
    for name, rates in curves:
        x, y = _thin(rates.recall, rates.precision)
        label = f"{name} (AP {format_number(rates.average_precision)})"
        # Each precision holds from the previous recall up to its own, as in the AP sum.
        (line,) = ax.plot(x, y, linewidth=1.6, drawstyle="steps-pre", label=label)
        # The precision of guessing: the class's share of the rows.
        ax.axhline(rates.prevalence, color=line.get_color(), linestyle=":", linewidth=1)
    _style(ax, "Precision-recall curve", "recall", "precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(fontsize=8, loc="lower left")
    return _png(figure)


def _calibration(truth: NDArray[np.bool_], score: NDArray[np.float64], positive: Any) -> bytes:
    import numpy as np

    # The bins of the ``ece`` metric, so the plot and the number agree.
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    bins = np.searchsorted(edges[1:-1], score)
    counts = np.bincount(bins, minlength=ECE_BINS)
    mean_score = np.bincount(bins, weights=score, minlength=ECE_BINS)
    positives = np.bincount(bins, weights=truth.astype(np.float64), minlength=ECE_BINS)
    ece = float(np.abs(positives - mean_score).sum() / len(score))
    used = counts > 0
    figure = _figure(5.2, 5.6)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], color=_GREY, linestyle="--", linewidth=1, label="perfectly calibrated")
    top.plot(
        mean_score[used] / counts[used],
        positives[used] / counts[used],
        marker="o",
        color=_BLUE,
        linewidth=1.6,
        label=f"model (ECE {format_number(ece)})",
    )
    _style(top, "Calibration (reliability diagram)", "", "observed share of positives")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.01)
    top.legend(fontsize=8, loc="upper left")
    bottom.bar(edges[:-1], counts, width=1.0 / ECE_BINS, align="edge", color=_BLUE, alpha=0.6)
    _style(bottom, "", f"predicted probability of {_label(positive)}", "rows")
    return _png(figure)


# -- regression ------------------------------------------------------------------------------


def _shown(rows: NDArray[np.intp], n: int) -> str:
    return f" ({len(rows):,} of {n:,} rows)" if len(rows) < n else ""


def _residuals(y: NDArray[Any], pred: NDArray[Any]) -> bytes:
    import numpy as np

    residuals = y - pred
    rows = _sample(len(y))
    figure = _figure(9.0, 4.2)
    scatter, histogram = figure.subplots(1, 2, width_ratios=[2, 1])
    scatter.scatter(pred[rows], residuals[rows], s=6, alpha=0.35, color=_BLUE, linewidths=0)
    scatter.axhline(0.0, color=_RED, linewidth=1)
    title = f"Residuals vs predicted{_shown(rows, len(y))}"
    _style(scatter, title, "predicted", "residual (actual - predicted)")
    histogram.hist(residuals[np.isfinite(residuals)], bins=50, color=_BLUE, alpha=0.7)
    histogram.axvline(0.0, color=_RED, linewidth=1)
    _style(histogram, "Residual distribution", "residual", "rows")
    return _png(figure)


def _predicted_vs_actual(y: NDArray[Any], pred: NDArray[Any]) -> bytes:
    import numpy as np

    rows = _sample(len(y))
    values = np.concatenate([y, pred])
    values = values[np.isfinite(values)]
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    margin = (high - low) * 0.03 or 1.0
    figure = _figure(5.2, 5.0)
    ax = figure.add_subplot()
    ax.scatter(y[rows], pred[rows], s=6, alpha=0.35, color=_BLUE, linewidths=0)
    ax.plot([low, high], [low, high], color=_RED, linewidth=1, label="perfect prediction")
    _style(ax, f"Predicted vs actual{_shown(rows, len(y))}", "actual", "predicted")
    ax.set_xlim(low - margin, high + margin)
    ax.set_ylim(low - margin, high + margin)
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="upper left")
    return _png(figure)
