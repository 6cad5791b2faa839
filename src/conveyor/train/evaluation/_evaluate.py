"""Evaluate a model on a holdout, and compare two models on the same holdout, with intervals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from conveyor.spec import Task
from conveyor.train.evaluation._bootstrap import count_matrices, percentile_interval
from conveyor.train.evaluation._inputs import Prepared, default_classes, prepare
from conveyor.train.evaluation._measures import MEASURES, known_metrics
from conveyor.train.evaluation._results import Evaluation, MetricValue, SliceMetrics

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["compare_paired", "evaluate"]


def evaluate(
    task: Task | str,
    y_true: Any,
    *,
    y_pred: Any = None,
    y_score: Any = None,
    classes: Sequence[Any] | None = None,
    slices: Mapping[str, Sequence[Any]] | None = None,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
    metrics: Sequence[str] | None = None,
    min_slice_rows: int = 30,
    slice_bootstrap: int | None = None,
) -> Evaluation:
    """Measure a model on a holdout, each metric with a bootstrap percentile interval.

    Every metric of the task that the inputs allow is computed: the probability metrics
    (``roc_auc``, ``pr_auc``, ``roc_auc_ovr``, ``log_loss``, ``brier``, ``ece``) need
    ``y_score``; the label metrics use ``y_pred`` or, without it, the labels a scikit-learn
    classifier would predict from ``y_score`` (probability above 0.5, or the most probable
    class). What cannot be computed is listed in :attr:`Evaluation.skipped` with the reason.

    Args:
        task: the learning task.
        y_true: true labels or values, shape ``(n,)``.
        y_pred: predicted labels (classification) or values (regression), shape ``(n,)``.
        y_score: probabilities: ``(n,)`` of the positive class (binary; an ``(n, 2)``
            ``predict_proba`` output is accepted too) or ``(n, k)`` (multiclass).
        classes: the class labels in the column order of ``y_score``; for binary tasks
            ``[negative, positive]``. Default: the sorted labels seen.
        slices: column name -> one value per row; each value with at least
            ``min_slice_rows`` rows gets its own metrics.
        n_bootstrap: resamples of the rows for the intervals (0 for none).
        confidence: coverage of the percentile intervals.
        seed: seed of the resampling; the same inputs and seed give the same intervals.
        metrics: compute only these (default: all the inputs allow).
        min_slice_rows: smaller slices are skipped.
        slice_bootstrap: resamples per slice (default ``min(n_bootstrap, 100)``).

    Raises:
        ValueError: inconsistent inputs, an unknown metric, or a requested metric the
            inputs do not allow.
    """
    task = Task(task)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    prepared = prepare(task, y_true, y_pred, y_score, classes)
    names, skipped = _choose(prepared, metrics)
    values = _measure(prepared, names, n_bootstrap, confidence, seed, skipped, "")
    sliced: dict[str, dict[str, SliceMetrics]] = {}
    if slices:
        per_slice = min(n_bootstrap, 100) if slice_bootstrap is None else slice_bootstrap
        for column, labels in slices.items():
            sliced[column] = _slices(
                prepared,
                names,
                column,
                labels,
                min_slice_rows,
                per_slice,
                confidence,
                seed,
                skipped,
            )
    return Evaluation(task, prepared.n, values, sliced, skipped)


def _choose(p: Prepared, metrics: Sequence[str] | None) -> tuple[list[str], dict[str, str]]:
    known = known_metrics(p.task)
    requested = list(known) if metrics is None else list(metrics)
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise ValueError(
            f"unknown metric(s) {unknown} for {p.task}; expected some of: " + ", ".join(known)
        )
    chosen: list[str] = []
    skipped: dict[str, str] = {}
    for name in requested:
        needs = MEASURES[name].needs
        missing = (needs == "score" and p.score is None) or (needs == "pred" and p.pred is None)
        if not missing:
            chosen.append(name)
            continue
        reason = f"needs y_{needs}"
        if metrics is not None:
            raise ValueError(f"metric {name!r} {reason}")
        skipped[name] = reason
    return chosen, skipped


def _measure(
    p: Prepared,
    names: Sequence[str],
    n_bootstrap: int,
    confidence: float,
    seed: int,
    skipped: dict[str, str],
    where: str,
) -> dict[str, MetricValue]:
    """Point values and intervals of ``names`` on ``p``; undefined ones go to ``skipped``."""
    import numpy as np

    defined: list[str] = []
    for name in names:
        reason = MEASURES[name].undefined(p)
        if reason is None:
            defined.append(name)
        else:
            skipped[f"{where}{name}"] = reason
    draws: dict[str, list[NDArray[np.float64]]] = {name: [] for name in defined}
    for counts in count_matrices(p.n, n_bootstrap, seed):
        for name in defined:
            draws[name].append(MEASURES[name].batch(p, counts))
    directions = known_metrics(p.task)
    values: dict[str, MetricValue] = {}
    for name in defined:
        resampled = np.concatenate(draws[name]) if draws[name] else np.empty(0)
        low, high, samples = percentile_interval(resampled, confidence)
        point = MEASURES[name].point(p)
        values[name] = MetricValue(name, point, low, high, directions[name], samples, confidence)
    return values


def _slices(
    p: Prepared,
    names: Sequence[str],
    column: str,
    labels: Sequence[Any],
    min_rows: int,
    n_bootstrap: int,
    confidence: float,
    seed: int,
    skipped: dict[str, str],
) -> dict[str, SliceMetrics]:
    import numpy as np

    keys = np.asarray([str(label) for label in labels])
    if len(keys) != p.n:
        raise ValueError(f"slice column {column!r} has {len(keys)} values for {p.n} rows")
    uniques, inverse = np.unique(keys, return_inverse=True)
    result: dict[str, SliceMetrics] = {}
    for code, key in enumerate(uniques.tolist()):
        rows = np.flatnonzero(inverse == code)
        where = f"slice {column}={key}"
        if len(rows) < min_rows:
            skipped[where] = f"{len(rows)} rows, fewer than min_slice_rows={min_rows}"
            continue
        entry: SliceMetrics = {"rows": len(rows)}
        entry.update(
            _measure(p.take(rows), names, n_bootstrap, confidence, seed, skipped, where + ": ")
        )
        result[key] = entry
    return result


def compare_paired(
    task: Task | str,
    y_true: Any,
    challenger: Any,
    champion: Any,
    metric: str,
    *,
    classes: Sequence[Any] | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> MetricValue:
    """The difference challenger - champion of ``metric`` on one holdout, with a paired interval.

    Both models are measured on the same resamples of the same rows, so the interval reflects
    how much the *difference* varies, which is much narrower than comparing two separate
    intervals. Pass it to :func:`check_gates` as ``paired=``.

    Args:
        task: the learning task.
        y_true: true labels or values of the holdout.
        challenger: the challenger's probabilities if ``metric`` needs them (``roc_auc``,
            ``pr_auc``, ``roc_auc_ovr``, ``log_loss``, ``brier``, ``ece``), else its
            predicted labels or values.
        champion: the champion's, in the same form.
        metric: the metric to compare.
        classes: as for :func:`evaluate`.
        n_bootstrap: paired resamples.
        confidence: coverage of the interval.
        seed: seed of the resampling.

    Returns:
        A :class:`MetricValue` named ``metric`` whose ``value``, ``low`` and ``high`` are
        differences; for a ``maximize`` metric a positive difference is an improvement.

    Raises:
        ValueError: unknown metric or inconsistent inputs.
    """
    import numpy as np

    task = Task(task)
    directions = known_metrics(task)
    if metric not in directions:
        raise ValueError(
            f"unknown metric {metric!r} for {task}; expected one of: " + ", ".join(directions)
        )
    measure = MEASURES[metric]
    key = "y_score" if measure.needs == "score" else "y_pred"
    if classes is None and task is not Task.regression:
        extra = [] if key == "y_score" else [challenger, champion]
        classes = default_classes(task, y_true, *extra)
    new = prepare(task, y_true, classes=classes, **{key: challenger})
    old = prepare(task, y_true, classes=classes, **{key: champion})
    for prepared in (new, old):
        reason = measure.undefined(prepared)
        if reason is not None:
            raise ValueError(f"{metric} is undefined on this holdout: {reason}")
    differences = [
        measure.batch(new, counts) - measure.batch(old, counts)
        for counts in count_matrices(new.n, n_bootstrap, seed)
    ]
    low, high, samples = percentile_interval(
        np.concatenate(differences) if differences else np.empty(0), confidence
    )
    point = measure.point(new) - measure.point(old)
    return MetricValue(metric, point, low, high, directions[metric], samples, confidence)
