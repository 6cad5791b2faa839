"""Turn the caller's labels, predictions and scores into validated, encoded numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from conveyor.spec import Task

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["Prepared", "default_classes", "prepare"]

_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class Prepared:
    """The holdout of one model, ready for the metric functions.

    For classification, ``y`` and ``pred`` hold class codes (positions in ``classes``; the
    positive class of a binary task is code 1) and ``score`` is the positive-class probability
    ``(n,)`` or the class probabilities ``(n, k)``. For regression, ``y`` and ``pred`` are the
    values and ``classes`` is empty. The arrays are never modified.
    """

    task: Task
    classes: tuple[Any, ...]
    y: NDArray[Any]
    pred: NDArray[Any] | None
    score: NDArray[np.float64] | None

    @property
    def n(self) -> int:
        """Number of rows."""
        return len(self.y)

    def take(self, rows: NDArray[np.intp]) -> Prepared:
        """The same holdout restricted to ``rows`` (same classes)."""
        return Prepared(
            self.task,
            self.classes,
            self.y[rows],
            None if self.pred is None else self.pred[rows],
            None if self.score is None else self.score[rows],
        )

    @cached_property
    def onehot_y(self) -> NDArray[np.float64]:
        """``(n, k)`` indicator of the true class."""
        return _onehot(self.y, len(self.classes))

    @cached_property
    def onehot_pred(self) -> NDArray[np.float64]:
        """``(n, k)`` indicator of the predicted class."""
        if self.pred is None:
            raise ValueError("no predictions")
        return _onehot(self.pred, len(self.classes))


def _onehot(codes: NDArray[Any], k: int) -> NDArray[np.float64]:
    import numpy as np

    out = np.zeros((len(codes), k), dtype=np.float64)
    out[np.arange(len(codes)), codes] = 1.0
    return out


def _labels(values: Any, what: str) -> NDArray[Any]:
    import numpy as np

    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {array.shape}")
    return array


def default_classes(task: Task, *label_arrays: Any) -> tuple[Any, ...]:
    """The sorted classes seen in ``label_arrays`` (a binary task falls back to ``(0, 1)``)."""
    import numpy as np

    if task is Task.regression:
        return ()
    seen = np.unique(np.concatenate([_labels(a, "labels") for a in label_arrays]))
    classes = tuple(seen.tolist())
    if task is Task.binary_classification and len(classes) < 2:
        if set(classes) <= {0, 1}:
            return (0, 1)
        raise ValueError(
            f"binary_classification needs two classes but the labels hold only {classes!r}; "
            "pass classes=[negative, positive]"
        )
    return classes


def _encode(values: NDArray[Any], classes: tuple[Any, ...], what: str) -> NDArray[np.intp]:
    import numpy as np

    index = {label: code for code, label in enumerate(classes)}
    uniques, inverse = np.unique(values, return_inverse=True)
    unknown = [u for u in uniques.tolist() if u not in index]
    if unknown:
        raise ValueError(
            f"{what} holds labels {unknown[:5]!r} that are not among the classes {classes!r}"
        )
    lookup = np.array([index[u] for u in uniques.tolist()], dtype=np.intp)
    return lookup[inverse.reshape(-1)]


def prepare(
    task: Task,
    y_true: Any,
    y_pred: Any = None,
    y_score: Any = None,
    classes: Sequence[Any] | None = None,
) -> Prepared:
    """Validate and encode one model's holdout.

    Raises:
        ValueError: the arrays disagree in length or shape, a label is not a known class,
            probabilities are outside [0, 1] or (multiclass) their rows do not sum to one.
    """
    import numpy as np

    y = _labels(y_true, "y_true")
    n = len(y)
    if n == 0:
        raise ValueError("y_true is empty: there is nothing to evaluate")
    pred = None if y_pred is None else _labels(y_pred, "y_pred")
    if pred is not None and len(pred) != n:
        raise ValueError(f"y_pred has {len(pred)} rows but y_true has {n}")
    if task is Task.regression:
        if y_score is not None:
            raise ValueError("regression takes y_pred (the predicted values), not y_score")
        if pred is None:
            raise ValueError("regression needs y_pred")
        return Prepared(task, (), y.astype(np.float64), pred.astype(np.float64), None)

    score = _scores(task, y_score, n)
    if classes is None:
        classes = default_classes(task, y, *([] if pred is None else [pred]))
    known = tuple(classes)
    if task is Task.binary_classification and len(known) != 2:
        raise ValueError(f"binary_classification needs exactly two classes, got {known!r}")
    if score is not None and score.ndim == 2 and score.shape[1] != len(known):
        raise ValueError(
            f"y_score has {score.shape[1]} columns but there are {len(known)} classes "
            f"{known!r}; pass classes= in the column order of y_score (e.g. model.classes_)"
        )
    codes = _encode(y, known, "y_true")
    if pred is None and score is not None:
        # The labels a scikit-learn classifier would predict from these probabilities.
        pred_codes = (score > 0.5).astype(np.intp) if score.ndim == 1 else score.argmax(axis=1)
    else:
        pred_codes = None if pred is None else _encode(pred, known, "y_pred")
    return Prepared(task, known, codes, pred_codes, score)


def _scores(task: Task, y_score: Any, n: int) -> NDArray[np.float64] | None:
    import numpy as np

    if y_score is None:
        return None
    score = np.asarray(y_score, dtype=np.float64)
    if task is Task.binary_classification and score.ndim == 2 and score.shape[1] == 2:
        score = score[:, 1]
    expected = 1 if task is Task.binary_classification else 2
    if score.ndim != expected or len(score) != n:
        shape = "(n,) positive-class" if expected == 1 else "(n, k) class"
        raise ValueError(
            f"y_score must hold {shape} probabilities for {task} with n={n}, "
            f"got shape {score.shape}"
        )
    if not np.isfinite(score).all() or score.min() < 0 or score.max() > 1:
        raise ValueError("y_score must hold probabilities in [0, 1] (no NaN)")
    if score.ndim == 2:
        worst = float(np.abs(score.sum(axis=1) - 1).max())
        if worst > _SUM_TOLERANCE:
            raise ValueError(
                f"the rows of y_score must sum to 1 (off by up to {worst:.3g}); "
                "pass predict_proba output"
            )
    return score
