"""The (train, validation) row sets each trial is scored on; the test part is never among them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.errors import TrainingError
from conveyor.spec._metrics import Task
from conveyor.spec._model import SplitMethod

if TYPE_CHECKING:
    import numpy as np

    from conveyor.spec._model import ModelSpec
    from conveyor.train._dataset import TrainingFrame
    from conveyor.train._split import Split

__all__ = ["Fold", "tuning_folds"]

Fold = tuple["np.ndarray[Any, np.dtype[np.int64]]", "np.ndarray[Any, np.dtype[np.int64]]"]
"""Row positions to train on and to score on."""


def tuning_folds(frame: TrainingFrame, parts: Split, spec: ModelSpec, k: int) -> list[Fold]:
    """The folds a trial is scored on.

    With ``k == 1`` the split's own train and validation parts. With ``k > 1``, ``k`` folds
    over the train and validation rows together, matching the split method:

    * ``time``: forward chaining (scikit-learn's ``TimeSeriesSplit``): rows in time order are
      cut into ``k + 1`` blocks and fold ``i`` trains on blocks ``0..i`` and validates on
      block ``i + 1``, so no fold trains on the future of its validation rows.
    * ``group``: ``GroupKFold``, so no group is on both sides of a fold.
    * ``random``: ``StratifiedKFold`` for classification, ``KFold`` for regression, shuffled
      with the split's seed.

    Raises:
        TrainingError: Too few rows, groups or rows of a class for ``k`` folds.
    """
    import numpy as np

    if k == 1:
        return [(parts.train, parts.validation)]
    pool = np.union1d(parts.train, parts.validation).astype(np.int64)
    method = spec.split.method
    try:
        if method is SplitMethod.time:
            from sklearn.model_selection import TimeSeriesSplit

            if frame.time is None:  # split() already refused this; keep mypy and users safe
                raise TrainingError("cv_folds with split method 'time' needs a time column")
            order = pool[np.argsort(frame.time[pool], kind="stable")]
            return [
                (np.sort(order[train]), np.sort(order[valid]))
                for train, valid in TimeSeriesSplit(n_splits=k).split(order)
            ]
        if method is SplitMethod.group:
            from sklearn.model_selection import GroupKFold

            if frame.groups is None:
                raise TrainingError("cv_folds with split method 'group' needs a group column")
            splits = GroupKFold(n_splits=k).split(pool, groups=frame.groups[pool])
        elif Task(spec.task) is not Task.regression:
            from sklearn.model_selection import StratifiedKFold

            folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=spec.split.seed)
            splits = folds.split(pool, frame.y[pool])
        else:
            from sklearn.model_selection import KFold

            splits = KFold(n_splits=k, shuffle=True, random_state=spec.split.seed).split(pool)
        return [(pool[train], pool[valid]) for train, valid in splits]
    except ValueError as err:
        raise TrainingError(
            f"cannot make {k} tuning folds ({method} split, {len(pool)} train and validation "
            f"rows): {err}; lower model.tune.cv_folds"
        ) from err
