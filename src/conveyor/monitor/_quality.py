"""Live model quality: a metric on the labelled predictions, per model version and time window.

The metric and its bootstrap percentile interval come from the training evaluation
(:func:`conveyor.train.evaluation.evaluate`), so a live ROC AUC means exactly what the gate's
holdout ROC AUC meant. Predictions without a label yet are counted (``coverage``) but not
measured; a cell with fewer than ``min_labels`` labelled rows, or where the metric is undefined
(one class only), has no value and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from conveyor.monitor._quality_report import QualityPoint, QualityReport
from conveyor.spec import PRIMARY_METRIC, TASK_METRICS, Task

if TYPE_CHECKING:
    import pyarrow as pa
    from numpy.typing import NDArray

__all__ = ["live_quality", "version_quality"]


def live_quality(
    joined: pa.Table,
    *,
    task: Task | str,
    metric: str | None = None,
    window: timedelta | None = None,
    confidence: float = 0.95,
    n_boot: int = 200,
    seed: int = 0,
    min_labels: int = 1,
    now: datetime | None = None,
) -> QualityReport:
    """Measure ``metric`` on the labelled rows of ``joined``, per version and time window.

    Args:
        joined: What :func:`joined_predictions` returns (shadow rows are reported apart).
        task: The learning task.
        metric: A metric of the task (default: its primary metric).
        window: Length of the time windows (by prediction time, aligned on the Unix epoch);
            None reports each version overall only.
        confidence: Coverage of the bootstrap percentile intervals.
        n_boot: Resamples per cell (0: no interval).
        seed: Seed of the resampling.
        min_labels: Labelled rows below which a cell has no value.
        now: The report's time (default: now).

    Raises:
        ValueError: ``metric`` is not a metric of ``task``, or ``window`` is not positive.
    """
    import numpy as np

    task = Task(task)
    metric = metric or PRIMARY_METRIC[task]
    if metric not in TASK_METRICS[task]:
        raise ValueError(
            f"unknown metric {metric!r} for {task}; expected one of: "
            + ", ".join(TASK_METRICS[task])
        )
    if window is not None and window <= timedelta(0):
        raise ValueError(f"window must be positive, got {window}")
    columns = _columns(joined, task)
    settings = (task, metric, confidence, n_boot, seed, max(min_labels, 1))
    groups = sorted(
        {(int(v), bool(s)) for v, s in zip(columns["version"], columns["shadow"], strict=True)},
        key=lambda vs: (vs[1], vs[0]),
    )
    overall: list[QualityPoint] = []
    windowed: list[QualityPoint] = []
    for version, shadow in groups:
        rows = np.flatnonzero((columns["version"] == version) & (columns["shadow"] == shadow))
        overall.append(_point(columns, rows, version, shadow, None, None, settings))
        if window is None:
            continue
        step = int(window.total_seconds() * 1e6)
        buckets = columns["micros"][rows] // step
        for bucket in np.unique(buckets).tolist():
            start = datetime.fromtimestamp(bucket * step / 1e6, UTC)
            cell = rows[buckets == bucket]
            windowed.append(_point(columns, cell, version, shadow, start, start + window, settings))
    windowed.sort(key=lambda p: (p.window_start or datetime.min.replace(tzinfo=UTC), p.shadow))
    return QualityReport(
        created_at=(now or datetime.now(UTC)).astimezone(UTC),
        task=task,
        metric=metric,
        direction=TASK_METRICS[task][metric],
        confidence=confidence,
        min_labels=max(min_labels, 1),
        window=window,
        versions=tuple(overall),
        windows=tuple(windowed),
    )


def _columns(joined: pa.Table, task: Task) -> dict[str, NDArray[Any]]:
    """The joined table as numpy arrays: numbers as float64 (NaN for null), ``labelled``."""
    import numpy as np
    import pyarrow.compute as pc

    n = joined.num_rows

    def numbers(name: str) -> NDArray[Any]:
        if name not in joined.column_names:
            return np.full(n, np.nan)
        column = pc.fill_null(pc.cast(joined.column(name), "float64"), float("nan"))
        return np.asarray(column.to_numpy(), dtype=np.float64)

    def texts(name: str) -> list[Any]:
        return joined.column(name).to_pylist() if name in joined.column_names else [None] * n

    def integers(name: str, kind: Any) -> NDArray[Any]:
        return np.asarray(joined.column(name).to_numpy(zero_copy_only=False), dtype=kind)

    label = numbers("label")
    columns: dict[str, NDArray[Any]] = {
        "version": integers("model_version", np.int64),
        "shadow": integers("shadow", bool),
        "micros": np.asarray(pc.cast(joined.column("timestamp"), "int64").to_numpy(), np.int64)
        if n
        else np.zeros(0, np.int64),
        "truth": label,
        "labelled": ~np.isnan(label),
        "score": numbers("score"),
        "prediction": numbers("prediction"),
    }
    if task is Task.multiclass_classification:
        truth = [
            _class_text(c) if c is not None else _class_text(None if np.isnan(x) else float(x))
            for x, c in zip(label, texts("label_class"), strict=True)
        ]
        columns["truth"] = np.array(truth, dtype=object)
        columns["labelled"] = np.array([t is not None for t in truth], dtype=bool)
        predicted = [_class_text(v) for v in texts("predicted_class")]
        columns["predicted_class"] = np.array(predicted, dtype=object)
    return columns


def _class_text(value: Any) -> str | None:
    """A class as text, whole numbers without ``.0`` (label 2.0 is class ``2``)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() and "." in text else text


def _point(
    columns: dict[str, NDArray[Any]],
    rows: NDArray[Any],
    version: int,
    shadow: bool,
    start: datetime | None,
    end: datetime | None,
    settings: tuple[Task, str, float, int, int, int],
) -> QualityPoint:
    task, metric, confidence, n_boot, seed, min_labels = settings
    labelled = rows[columns["labelled"][rows]]
    n, k = len(rows), len(labelled)
    coverage = k / n if n else 0.0
    base = (version, shadow, start, end, n, k, coverage)
    if k < min_labels:
        return QualityPoint(*base, None, None, None, f"{k} labelled, fewer than {min_labels}")
    try:
        value, low, high, reason = _measure(
            columns, labelled, task, metric, confidence, n_boot, seed
        )
    except ValueError as err:
        return QualityPoint(*base, None, None, None, str(err))
    return QualityPoint(*base, value, low, high, reason)


def _measure(
    columns: dict[str, NDArray[Any]],
    rows: NDArray[Any],
    task: Task,
    metric: str,
    confidence: float,
    n_boot: int,
    seed: int,
) -> tuple[float | None, float | None, float | None, str | None]:
    import math

    import numpy as np

    from conveyor.train.evaluation import evaluate

    kwargs: dict[str, Any] = {}
    if task is Task.multiclass_classification:
        y_true: Any = columns["truth"][rows].astype(str)
        predicted = columns["predicted_class"][rows]
        if any(p is None for p in predicted):
            raise ValueError("the log has no predicted class for some rows")
        kwargs["y_pred"] = predicted.astype(str)
    elif task is Task.binary_classification:
        y_true = columns["truth"][rows].astype(np.int64)
        kwargs["classes"] = [0, 1]
        scores = columns["score"][rows]
        if np.isfinite(scores).all():
            kwargs["y_score"] = scores
        predictions = columns["prediction"][rows]
        if np.isin(predictions, (0.0, 1.0)).all():
            kwargs["y_pred"] = predictions.astype(np.int64)
        if not kwargs.keys() & {"y_score", "y_pred"}:
            raise ValueError("the log has neither probabilities nor 0/1 predictions")
    else:
        y_true = columns["truth"][rows]
        predictions = columns["prediction"][rows]
        if not np.isfinite(predictions).all():
            raise ValueError("the log has no numeric prediction for some rows")
        kwargs["y_pred"] = predictions
    evaluation = evaluate(
        task,
        y_true,
        n_bootstrap=n_boot,
        confidence=confidence,
        seed=seed,
        metrics=[metric],
        **kwargs,
    )
    if metric not in evaluation.metrics:
        return None, None, None, evaluation.skipped.get(metric, "undefined")
    measured = evaluation.metrics[metric]
    if measured.samples == 0:
        return measured.value, None, None, None if n_boot == 0 else "no interval"
    low = None if math.isnan(measured.low) else measured.low
    high = None if math.isnan(measured.high) else measured.high
    return measured.value, low, high, None


def version_quality(
    artifacts_url: str,
    *,
    versions: Sequence[int],
    since: datetime,
    task: Task | str,
    metric: str | None = None,
    key: str | None = None,
    min_labels: int = 1,
    n_boot: int = 0,
) -> dict[tuple[int, bool], tuple[float | None, int, float | None]]:
    """The live metric of ``versions`` on predictions logged at or after ``since``.

    The rollout controller's view (the ``quality_drop`` guardrail). With ``n_boot`` resamples,
    each value gets a standard error: the width of its 95% percentile interval divided by
    2 x 1.96, so the guardrail can tell a drop from the noise of a few hundred labels.

    Returns:
        ``(model_version, shadow)`` -> ``(metric value or None, labelled rows, standard error
        or None)``, for every (version, shadow) pair found in the log, and ``(v, False) ->
        (None, 0, None)`` for requested versions with no logged prediction (or no log at all).

    Raises:
        SourceError: The log cannot be read, or has no column for ``key``.
        ArtifactError: The labels cannot be read.
    """
    from conveyor.monitor._joined import has_predictions, joined_predictions

    result: dict[tuple[int, bool], tuple[float | None, int, float | None]] = {
        (int(v), False): (None, 0, None) for v in versions
    }
    if not has_predictions(artifacts_url):
        return result
    joined = joined_predictions(
        artifacts_url, key=key, since=since, versions=versions, include_shadow=True
    )
    report = live_quality(joined, task=task, metric=metric, n_boot=n_boot, min_labels=min_labels)
    for point in report.versions:
        error = None
        if point.ci_low is not None and point.ci_high is not None:
            error = (point.ci_high - point.ci_low) / (2 * _Z95)
        result[(point.model_version, point.shadow)] = (point.value, point.n_labelled, error)
    return result


_Z95: Final = 1.959963984540054
