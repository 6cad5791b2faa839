"""Train / validation / test splits: random (stratified for classifiers), time and group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.errors import TrainingError
from conveyor.spec._metrics import Task
from conveyor.spec._model import SplitMethod

if TYPE_CHECKING:
    import numpy as np

    from conveyor.spec._model import SplitSpec
    from conveyor.train._dataset import TrainingFrame

__all__ = ["Split", "split"]


@dataclass(frozen=True, eq=False)
class Split:
    """Row positions of each part, sorted ascending, disjoint, covering every row.

    ``validation`` is cut from the training side (for early stopping and tuning); ``test`` is
    held out for evaluation only.
    """

    train: np.ndarray[Any, np.dtype[np.int64]]
    validation: np.ndarray[Any, np.dtype[np.int64]]
    test: np.ndarray[Any, np.dtype[np.int64]]


def split(frame: TrainingFrame, spec: SplitSpec, *, task: Task) -> Split:
    """Split the frame's rows as the spec says; the same seed gives the same split.

    * ``random``: shuffled with ``spec.seed``; for classification tasks stratified, so each
      class keeps its share in every part.
    * ``time``: rows sorted by time (ties keep row order); the latest ``test_fraction`` is the
      test part and the ``validation_fraction`` of the rest just before it is validation.
      Every train time is <= every validation time <= every test time.
    * ``group``: whole groups are shuffled and assigned to parts, so no group is in two parts;
      part sizes are as close to the fractions as whole groups allow.

    Raises:
        TrainingError: Too few rows (or groups, or rows of a class) for three parts; a time
            split without a time column or with missing times; missing group values.
    """
    n = len(frame)
    if spec.method is None:  # the default: by time when the dataset has a time column
        method = SplitMethod.time if frame.time is not None else SplitMethod.random
        spec = spec.model_copy(update={"method": method})
    if spec.method is SplitMethod.time:
        return _time_split(frame, spec)
    if spec.method is SplitMethod.group:
        return _group_split(frame, spec)
    if task is not Task.regression:
        return _stratified_split(frame, spec)
    import numpy as np

    order = np.random.default_rng(spec.seed).permutation(n)
    return _cut(order, _sizes(n, spec, what="rows"))


def _sizes(n: int, spec: SplitSpec, *, what: str) -> tuple[int, int]:
    n_test = round(n * spec.test_fraction)
    n_valid = round((n - n_test) * spec.validation_fraction)
    if min(n_test, n_valid, n - n_test - n_valid) < 1:
        raise TrainingError(
            f"{n} {what} are too few for test_fraction {spec.test_fraction} and "
            f"validation_fraction {spec.validation_fraction}: every part needs at least one "
            f"(test {n_test}, validation {n_valid}, train {n - n_test - n_valid})"
        )
    return n_test, n_valid


def _cut(order: np.ndarray[Any, Any], sizes: tuple[int, int]) -> Split:
    """The first ``n_test`` positions of ``order`` are test, the next validation, then train."""
    import numpy as np

    n_test, n_valid = sizes
    return Split(
        train=np.sort(order[n_test + n_valid :]).astype(np.int64),
        validation=np.sort(order[n_test : n_test + n_valid]).astype(np.int64),
        test=np.sort(order[:n_test]).astype(np.int64),
    )


def _stratified_split(frame: TrainingFrame, spec: SplitSpec) -> Split:
    import numpy as np

    _sizes(len(frame), spec, what="rows")
    codes = np.unique(frame.y, return_inverse=True)[1]
    labels, counts = np.unique(frame.y, return_counts=True)
    small = [(label, count) for label, count in zip(labels, counts, strict=True) if count < 2]
    if small:
        listed = ", ".join(f"{label!r} ({count} row)" for label, count in small)
        raise TrainingError(
            f"a stratified split needs at least 2 rows per class; class {listed} has fewer. "
            "Add rows, drop the class, or use method 'time' or 'group'"
        )
    rng = np.random.default_rng(spec.seed)
    parts: list[list[np.ndarray[Any, Any]]] = [[], [], []]
    for code in range(len(labels)):
        rows = rng.permutation(np.flatnonzero(codes == code))
        n_test = round(len(rows) * spec.test_fraction)
        n_valid = round((len(rows) - n_test) * spec.validation_fraction)
        parts[0].append(rows[:n_test])
        parts[1].append(rows[n_test : n_test + n_valid])
        parts[2].append(rows[n_test + n_valid :])
    test, validation, train = (np.sort(np.concatenate(part)).astype(np.int64) for part in parts)
    if len(test) == 0 or len(validation) == 0:
        raise TrainingError(
            f"{len(frame)} rows are too few for a stratified split with test_fraction "
            f"{spec.test_fraction} and validation_fraction {spec.validation_fraction}"
        )
    return Split(train=train, validation=validation, test=test)


def _time_split(frame: TrainingFrame, spec: SplitSpec) -> Split:
    import numpy as np
    import pandas as pd

    if frame.time is None:
        raise TrainingError(
            "split method 'time' needs a time column: set model.split.time_column or "
            "dataset.time_column"
        )
    missing = int(pd.isna(frame.time).sum())
    if missing:
        raise TrainingError(
            f"the time column has {missing} missing values; a time split needs a time in "
            "every row (drop or fill them, or use method 'random')"
        )
    order = np.argsort(frame.time, kind="stable")[::-1]
    # Reversed, the latest rows come first (test), then validation, then train; ties
    # reversed too, so within one timestamp the later rows go to the later part.
    return _cut(order, _sizes(len(frame), spec, what="rows"))


def _group_split(frame: TrainingFrame, spec: SplitSpec) -> Split:
    import numpy as np
    import pandas as pd

    if frame.groups is None:
        raise TrainingError("split method 'group' needs model.split.group_column")
    codes, uniques = pd.factorize(frame.groups, sort=True)
    missing = int((codes < 0).sum())
    if missing:
        raise TrainingError(
            f"group column {spec.group_column!r} has {missing} missing values; every row "
            "needs a group (drop or fill them)"
        )
    n = len(frame)
    n_test, n_valid = _sizes(n, spec, what="rows")
    if len(uniques) < 3:
        raise TrainingError(
            f"group column {spec.group_column!r} has {len(uniques)} distinct values; a group "
            "split needs at least 3 (one per part)"
        )
    sizes = np.bincount(codes)
    shuffled = np.random.default_rng(spec.seed).permutation(len(uniques))
    part = np.full(len(uniques), 2)  # 0 test, 1 validation, 2 train
    filled = [0, 0]
    targets = (n_test, n_valid)
    cursor = 0
    for which in (0, 1):
        # Always take at least one group; then add groups while it brings the size nearer.
        while cursor < len(shuffled) - (2 - which):
            group = shuffled[cursor]
            after = filled[which] + sizes[group]
            if filled[which] and abs(after - targets[which]) >= abs(filled[which] - targets[which]):
                break
            part[group] = which
            filled[which] = after
            cursor += 1
    row_part = part[codes]
    return Split(
        train=np.flatnonzero(row_part == 2).astype(np.int64),
        validation=np.flatnonzero(row_part == 1).astype(np.int64),
        test=np.flatnonzero(row_part == 0).astype(np.int64),
    )
