"""Each metric twice: scikit-learn on the full holdout, and numpy on many resamples at once.

A resample is a row of a count matrix ``W`` of shape ``(b, n)``: ``W[r, i]`` says how often row
``i`` was drawn in resample ``r``. Every batch function turns ``W`` into ``b`` metric values with
matrix products and cumulative sums instead of ``b`` scikit-learn calls; with ``W`` all ones it
gives scikit-learn's value (the tests check every metric). A value is NaN where the metric is
undefined on a resample (for example ROC AUC when a resample holds one class only).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from conveyor.spec import TASK_METRICS, Direction, Task

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from conveyor.train.evaluation._inputs import Prepared

    Floats = NDArray[np.float64]

__all__ = ["ECE_BINS", "EXTRA_METRICS", "MEASURES", "Measure", "known_metrics"]

ECE_BINS: Final = 10
"""Equal-width bins of the expected calibration error."""

EXTRA_METRICS: Final[Mapping[Task, Mapping[str, Direction]]] = MappingProxyType(
    {
        Task.binary_classification: MappingProxyType({}),
        Task.multiclass_classification: MappingProxyType({}),
        Task.regression: MappingProxyType({}),
    }
)
"""Metrics reported besides the spec's ``TASK_METRICS`` (none today: every metric can be gated)."""


def known_metrics(task: Task) -> dict[str, Direction]:
    """Every metric :func:`evaluate` can report for ``task``, with its direction."""
    return {**TASK_METRICS[task], **EXTRA_METRICS[task]}


@dataclass(frozen=True)
class Measure:
    """How to compute one metric.

    Attributes:
        needs: ``"pred"`` (labels or values) or ``"score"`` (probabilities).
        point: the value on the whole holdout (scikit-learn where it has the metric).
        batch: the values on the resamples of a count matrix ``W`` (NaN where undefined).
        undefined: why the metric cannot be computed on this holdout, or None.
    """

    needs: str
    point: Callable[[Prepared], float]
    batch: Callable[[Prepared, Floats], Floats]
    undefined: Callable[[Prepared], str | None] = lambda p: None


# -- helpers ---------------------------------------------------------------------------------


def _ratio(num: Floats, den: Floats, empty: float = float("nan")) -> Floats:
    import numpy as np

    out = np.full(np.broadcast(num, den).shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _mean(w: Floats, per_row: Floats) -> Floats:
    result: Floats = (w @ per_row) / w.sum(axis=1)
    return result


def _pred(p: Prepared) -> NDArray[Any]:
    if p.pred is None:
        raise ValueError("no predictions")
    return p.pred


def _score(p: Prepared) -> Floats:
    if p.score is None:
        raise ValueError("no scores")
    return p.score


def _correct(p: Prepared) -> Floats:
    result: Floats = (p.y == _pred(p)).astype("float64")
    return result


def _one_class(p: Prepared) -> str | None:
    import numpy as np

    present = len(np.unique(p.y))
    if present < len(p.classes):
        return f"y_true holds {present} of the {len(p.classes)} classes"
    return None


def _tie_groups(sorted_values: Floats) -> NDArray[np.intp] | None:
    import numpy as np

    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    return None if len(starts) == len(sorted_values) else starts


def _group(matrix: Floats, starts: NDArray[np.intp] | None) -> Floats:
    import numpy as np

    return matrix if starts is None else np.add.reduceat(matrix, starts, axis=1)


# -- classification by label -----------------------------------------------------------------


def _accuracy(p: Prepared, w: Floats) -> Floats:
    return _mean(w, _correct(p))


def _balanced_accuracy(p: Prepared, w: Floats) -> Floats:
    import numpy as np

    support = w @ p.onehot_y
    hits = w @ (p.onehot_y * _correct(p)[:, None])
    recall = _ratio(hits, support)
    present = support > 0
    result: Floats = np.where(present, recall, 0.0).sum(axis=1) / present.sum(axis=1)
    return result


def _binary_counts(p: Prepared, w: Floats) -> tuple[Floats, Floats, Floats]:
    truth = p.y == 1
    said = _pred(p) == 1
    tp = w @ (truth & said).astype("float64")
    fp = w @ (~truth & said).astype("float64")
    fn = w @ (truth & ~said).astype("float64")
    return tp, fp, fn


def _precision(p: Prepared, w: Floats) -> Floats:
    tp, fp, _ = _binary_counts(p, w)
    return _ratio(tp, tp + fp, 0.0)


def _recall(p: Prepared, w: Floats) -> Floats:
    tp, _, fn = _binary_counts(p, w)
    return _ratio(tp, tp + fn, 0.0)


def _f1(p: Prepared, w: Floats) -> Floats:
    tp, fp, fn = _binary_counts(p, w)
    return _ratio(2 * tp, 2 * tp + fp + fn, 0.0)


def _f1_per_class(p: Prepared, w: Floats) -> tuple[Floats, Floats, Floats]:
    support = w @ p.onehot_y
    predicted = w @ p.onehot_pred
    tp = w @ (p.onehot_y * p.onehot_pred)
    return _ratio(2 * tp, support + predicted, 0.0), support, predicted


def _f1_macro(p: Prepared, w: Floats) -> Floats:
    f1, support, predicted = _f1_per_class(p, w)
    # scikit-learn averages over the labels present in y_true or y_pred of the resample.
    present = (support + predicted) > 0
    result: Floats = (f1 * present).sum(axis=1) / present.sum(axis=1)
    return result


def _f1_weighted(p: Prepared, w: Floats) -> Floats:
    f1, support, _ = _f1_per_class(p, w)
    return _ratio((f1 * support).sum(axis=1), support.sum(axis=1))


# -- classification by probability -----------------------------------------------------------


def _row_log_loss(p: Prepared) -> Floats:
    import numpy as np

    score = _score(p)
    eps = np.finfo(np.float64).eps
    if score.ndim == 1:
        truth = p.y == 1
        chosen = np.where(truth, np.clip(score, eps, 1 - eps), np.clip(1 - score, eps, 1 - eps))
    else:
        chosen = np.clip(score[np.arange(p.n), p.y], eps, 1 - eps)
    result: Floats = -np.log(chosen)
    return result


def _log_loss(p: Prepared, w: Floats) -> Floats:
    return _mean(w, _row_log_loss(p))


def _brier(p: Prepared, w: Floats) -> Floats:
    return _mean(w, (_score(p) - (p.y == 1)) ** 2)


def _auc(score: Floats, truth: NDArray[np.bool_], w: Floats) -> Floats:
    """Mann-Whitney ROC AUC with ties counted half, for every resample of ``w``."""
    import numpy as np

    order = np.argsort(score, kind="stable")
    starts = _tie_groups(score[order])
    ws = w[:, order]
    pos_row = truth[order].astype(np.float64)
    pos = _group(ws * pos_row, starts)
    neg = _group(ws * (1.0 - pos_row), starts)
    below = np.cumsum(neg, axis=1) - 0.5 * neg  # negatives below each group, ties half
    pairs = (pos * below).sum(axis=1)
    return _ratio(pairs, pos.sum(axis=1) * neg.sum(axis=1))


def _roc_auc(p: Prepared, w: Floats) -> Floats:
    return _auc(_score(p), p.y == 1, w)


def _roc_auc_ovr(p: Prepared, w: Floats) -> Floats:
    import numpy as np

    score = _score(p)
    per_class = np.stack([_auc(score[:, c], p.y == c, w) for c in range(len(p.classes))], axis=1)
    # NaN when a class is missing from the resample, as scikit-learn refuses that case.
    result: Floats = per_class.mean(axis=1)
    return result


def _pr_auc(p: Prepared, w: Floats) -> Floats:
    """Average precision (scikit-learn's step-wise area under the precision-recall curve)."""
    import numpy as np

    score = _score(p)
    order = np.argsort(-score, kind="stable")
    starts = _tie_groups(score[order])
    ws = w[:, order]
    pos_row = (p.y[order] == 1).astype(np.float64)
    pos = _group(ws * pos_row, starts)
    neg = _group(ws * (1.0 - pos_row), starts)
    true_pos = np.cumsum(pos, axis=1)
    precision = _ratio(true_pos, true_pos + np.cumsum(neg, axis=1), 0.0)
    return _ratio((pos * precision).sum(axis=1), pos.sum(axis=1))


def _confidence(p: Prepared) -> tuple[Floats, Floats]:
    import numpy as np

    score = _score(p)
    if score.ndim == 1:
        return score, (p.y == 1).astype(np.float64)
    top = score.argmax(axis=1)
    return score[np.arange(p.n), top], (top == p.y).astype(np.float64)


def _ece(p: Prepared, w: Floats) -> Floats:
    """Expected calibration error over equal-width bins (binning of ``calibration_curve``).

    Binary: of the positive-class probability. Multiclass: of the top-class probability
    against whether the top class is right.
    """
    import numpy as np

    conf, hit = _confidence(p)
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    bins = np.searchsorted(edges[1:-1], conf)
    gap = np.zeros((p.n, ECE_BINS))
    gap[np.arange(p.n), bins] = hit - conf
    result: Floats = np.abs(w @ gap).sum(axis=1) / w.sum(axis=1)
    return result


def _ece_point(p: Prepared) -> float:
    import numpy as np

    return float(_ece(p, np.ones((1, p.n)))[0])


# -- regression ------------------------------------------------------------------------------


def _errors(p: Prepared) -> Floats:
    result: Floats = _pred(p) - p.y
    return result


def _rmse(p: Prepared, w: Floats) -> Floats:
    import numpy as np

    result: Floats = np.sqrt(_mean(w, _errors(p) ** 2))
    return result


def _mae(p: Prepared, w: Floats) -> Floats:
    import numpy as np

    return _mean(w, np.abs(_errors(p)))


def _mape(p: Prepared, w: Floats) -> Floats:
    import numpy as np

    floor = np.finfo(np.float64).eps  # scikit-learn's guard against y_true == 0
    return _mean(w, np.abs(_errors(p)) / np.maximum(np.abs(p.y), floor))


def _median_ae(p: Prepared, w: Floats) -> Floats:
    import numpy as np

    absolute = np.abs(_errors(p))
    order = np.argsort(absolute, kind="stable")
    ranked = absolute[order]
    cumulative = np.cumsum(w[:, order], axis=1)
    total = cumulative[:, -1:]
    # Positions of the middle element(s) of each resample, as np.median takes them.
    lower = (cumulative <= (total - 1) // 2).sum(axis=1)
    upper = (cumulative <= total // 2).sum(axis=1)
    result: Floats = (ranked[lower] + ranked[upper]) / 2
    return result


def _r2(p: Prepared, w: Floats) -> Floats:
    centred = p.y - p.y.mean()  # centring keeps the sums of squares accurate
    size = w.sum(axis=1)
    spread = w @ centred**2 - (w @ centred) ** 2 / size
    residual = w @ _errors(p) ** 2
    result: Floats = 1.0 - _ratio(residual, spread)
    return result


def _constant_target(p: Prepared) -> str | None:
    return "y_true is constant" if float(p.y.max()) == float(p.y.min()) else None


# -- scikit-learn point estimates ------------------------------------------------------------


def _sk(name: str, **kwargs: Any) -> Callable[[Prepared], float]:
    def point(p: Prepared) -> float:
        from sklearn import metrics

        needs_score = name in {
            "roc_auc_score",
            "average_precision_score",
            "log_loss",
            "brier_score_loss",
        }
        second = _score(p) if needs_score else _pred(p)
        extra = dict(kwargs)
        if name == "log_loss":
            extra["labels"] = list(range(len(p.classes)))
        with warnings.catch_warnings():
            # Edge cases scikit-learn warns about (a predicted class absent from y_true) are
            # handled as it handles them; the warning would only be noise for the caller.
            warnings.simplefilter("ignore", UserWarning)
            return float(getattr(metrics, name)(p.y, second, **extra))

    return point


_ZERO = {"zero_division": 0.0}

MEASURES: Final[Mapping[str, Measure]] = MappingProxyType(
    {
        "accuracy": Measure("pred", _sk("accuracy_score"), _accuracy),
        "balanced_accuracy": Measure("pred", _sk("balanced_accuracy_score"), _balanced_accuracy),
        "precision": Measure("pred", _sk("precision_score", **_ZERO), _precision),
        "recall": Measure("pred", _sk("recall_score", **_ZERO), _recall),
        "f1": Measure("pred", _sk("f1_score", **_ZERO), _f1),
        "f1_macro": Measure("pred", _sk("f1_score", average="macro", **_ZERO), _f1_macro),
        "f1_weighted": Measure("pred", _sk("f1_score", average="weighted", **_ZERO), _f1_weighted),
        "roc_auc": Measure("score", _sk("roc_auc_score"), _roc_auc, _one_class),
        "roc_auc_ovr": Measure(
            "score", _sk("roc_auc_score", multi_class="ovr"), _roc_auc_ovr, _one_class
        ),
        "pr_auc": Measure("score", _sk("average_precision_score"), _pr_auc, _one_class),
        "log_loss": Measure("score", _sk("log_loss"), _log_loss),
        "brier": Measure("score", _sk("brier_score_loss"), _brier),
        "ece": Measure("score", _ece_point, _ece),
        "rmse": Measure("pred", _sk("root_mean_squared_error"), _rmse),
        "mae": Measure("pred", _sk("mean_absolute_error"), _mae),
        "mape": Measure("pred", _sk("mean_absolute_percentage_error"), _mape),
        "median_ae": Measure("pred", _sk("median_absolute_error"), _median_ae),
        "r2": Measure("pred", _sk("r2_score"), _r2, _constant_target),
    }
)
"""How to compute every metric of :func:`known_metrics`, by name."""
