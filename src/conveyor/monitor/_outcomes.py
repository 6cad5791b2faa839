"""A/B outcomes derived from ground-truth labels joined to the prediction log.

An A/B rollout compares the versions on a per-request outcome. For the built-in outcomes
(:data:`LABEL_OUTCOMES`) the labels ingested with ``conveyor labels ingest`` give it for every
logged request, without the client reporting anything:

- ``accuracy`` (classification): 1 when the predicted class is the label, else 0. A binary
  classifier's predicted class is its logged 0/1 prediction, or, when the log holds another
  kind of class, whether the positive class's probability exceeds 0.5 (as the training
  evaluation does); a multiclass classifier's is compared with the label as text (``2.0`` is
  class ``2``).
- ``absolute_error`` and ``squared_error`` (regression): ``|prediction - label|`` and its square.

A metric of another task (``accuracy`` of a regressor, say), or an outcome named by the user
(``converted``), cannot be read off the labels: those are left to ``POST /outcomes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from conveyor.spec import Task

if TYPE_CHECKING:
    import pyarrow as pa
    from numpy.typing import NDArray

__all__ = ["LABEL_OUTCOMES", "label_outcomes", "version_outcomes"]

LABEL_OUTCOMES: Final = frozenset({"accuracy", "absolute_error", "squared_error"})
"""A/B metrics computed from labels (:func:`version_outcomes`); others come from clients."""

_TASK_OUTCOMES: Final = {
    Task.binary_classification: frozenset({"accuracy"}),
    Task.multiclass_classification: frozenset({"accuracy"}),
    Task.regression: frozenset({"absolute_error", "squared_error"}),
}


def version_outcomes(
    artifacts_url: str,
    *,
    versions: Sequence[int],
    since: datetime,
    metric: str,
    task: Task | str,
    key: str | None = None,
) -> dict[int, tuple[int, float, float]]:
    """Each version's A/B outcomes on its labelled predictions logged at or after ``since``.

    Shadow predictions are left out: an A/B test compares the answers callers got.

    Args:
        artifacts_url: The artifact store's root, holding ``predictions/`` and ``labels/``.
        versions: The model versions compared.
        since: Only predictions logged at or after this time (aware): the step's start.
        metric: The A/B rollout's ``metric``.
        task: The model's learning task.
        key: Also join labels ingested by this feature (the log's ``in_<key>``).

    Returns:
        ``version -> (outcomes, their sum, the sum of their squares)`` for every version in
        ``versions`` (``(0, 0.0, 0.0)`` when none of its predictions is labelled yet); empty
        when ``metric`` cannot be derived from labels for ``task`` or nothing is logged yet.

    Raises:
        SourceError: The log cannot be read, or has no column for ``key``.
        ArtifactError: The labels cannot be read.
    """
    import numpy as np

    from conveyor.monitor._joined import has_predictions, joined_predictions

    task = Task(task)
    if metric not in _TASK_OUTCOMES[task] or not has_predictions(artifacts_url):
        return {}
    joined = joined_predictions(artifacts_url, key=key, since=since, versions=versions)
    outcome = label_outcomes(joined, metric=metric, task=task)
    version = np.asarray(joined.column("model_version").to_numpy(zero_copy_only=False), np.int64)
    result: dict[int, tuple[int, float, float]] = {}
    for number in versions:
        values = outcome[(version == int(number)) & ~np.isnan(outcome)]
        result[int(number)] = (
            int(values.size),
            float(values.sum()),
            float(np.square(values).sum()),
        )
    return result


def label_outcomes(joined: pa.Table, *, metric: str, task: Task | str) -> NDArray[Any]:
    """The outcome of each row of ``joined`` (NaN where unlabelled or not derivable).

    Args:
        joined: What :func:`~conveyor.monitor.joined_predictions` returns.
        metric: One of :data:`LABEL_OUTCOMES` that fits ``task``.
        task: The model's learning task.

    Raises:
        ValueError: ``metric`` cannot be derived from labels for ``task``.
    """
    import numpy as np

    task = Task(task)
    if metric not in _TASK_OUTCOMES[task]:
        raise ValueError(
            f"the A/B outcome {metric!r} cannot be derived from labels for {task}; expected "
            f"one of: {', '.join(sorted(_TASK_OUTCOMES[task]))}"
        )
    label = _numbers(joined, "label")
    if task is Task.multiclass_classification:
        return _multiclass_accuracy(joined, label)
    prediction = _numbers(joined, "prediction")
    if task is Task.regression:
        error: NDArray[Any] = np.abs(prediction - label)  # NaN where either is missing
        return error if metric == "absolute_error" else np.square(error)
    score = _numbers(joined, "score")
    predicted = np.where(
        np.isin(prediction, (0.0, 1.0)),
        prediction,
        np.where(np.isfinite(score), (score > 0.5).astype(np.float64), np.nan),
    )
    known = ~np.isnan(predicted) & ~np.isnan(label)
    outcome = np.full(joined.num_rows, np.nan)
    outcome[known] = (predicted[known] == label[known]).astype(np.float64)
    return outcome


def _numbers(joined: pa.Table, name: str) -> NDArray[Any]:
    """A column as float64, NaN for null (or for a missing column)."""
    import numpy as np
    import pyarrow.compute as pc

    if name not in joined.column_names:
        return np.full(joined.num_rows, np.nan)
    column = pc.fill_null(pc.cast(joined.column(name), "float64"), float("nan"))
    return np.asarray(column.to_numpy(), dtype=np.float64)


def _multiclass_accuracy(joined: pa.Table, label: NDArray[Any]) -> NDArray[Any]:
    import math

    import numpy as np

    from conveyor.monitor._quality import _class_text

    classes = joined.column("label_class").to_pylist()
    predicted = joined.column("predicted_class").to_pylist()
    outcome = np.full(joined.num_rows, np.nan)
    for i, (number, name, guess) in enumerate(zip(label.tolist(), classes, predicted, strict=True)):
        truth = _class_text(name) if name is not None else None
        if truth is None and not math.isnan(number):
            truth = _class_text(float(number))
        answer = _class_text(guess)
        if truth is not None and answer is not None:
            outcome[i] = float(truth == answer)
    return outcome
