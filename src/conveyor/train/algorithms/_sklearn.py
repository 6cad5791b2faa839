"""Any scikit-learn-compatible estimator, named by its dotted path."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from conveyor.errors import TrainingError
from conveyor.spec._metrics import Task
from conveyor.train._dataset import FeatureKind
from conveyor.train.algorithms._base import BaseAlgorithm, OnIteration
from conveyor.train.algorithms._preprocess import make_preprocessor

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

__all__ = ["SklearnAlgorithm"]

PREFIX: Final = "sklearn:"
_UNSCALED_MODULES: Final = ("sklearn.tree", "sklearn.ensemble", "lightgbm", "xgboost")


class SklearnAlgorithm(BaseAlgorithm):
    """An estimator class by dotted path (``sklearn.linear_model.LogisticRegression``).

    ``params`` go to the estimator's constructor. ``random_state`` is set to ``seed`` and
    ``n_jobs`` to the thread count when the estimator takes them and ``params`` do not.
    Categories are one-hot encoded (unknown values ignored, rare ones merged); numbers are
    median-imputed and standardised, except for tree models (``sklearn.tree``,
    ``sklearn.ensemble``), which get median imputation only. ``on_iteration`` is not called:
    scikit-learn estimators do not report per-iteration metrics.
    """

    kind: ClassVar[str] = "sklearn"

    def __init__(
        self,
        estimator: str,
        *,
        task: Task,
        feature_schema: Mapping[str, FeatureKind],
        params: Mapping[str, Any] | None = None,
        seed: int = 42,
        n_jobs: int | None = None,
    ) -> None:
        super().__init__(
            task=task, feature_schema=feature_schema, params=params, seed=seed, n_jobs=n_jobs
        )
        self.estimator = estimator

    @property
    def algorithm(self) -> str:
        """``'sklearn:<module.Class>'``."""
        return PREFIX + self.estimator

    def estimator_class(self) -> type[Any]:
        """The estimator class, imported.

        Raises:
            TrainingError: It cannot be imported or is not a class with ``fit``.
        """
        module_name, _, class_name = self.estimator.rpartition(".")
        try:
            found = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as err:
            raise TrainingError(
                f"algorithm {self.algorithm!r}: cannot import {class_name!r} from "
                f"{module_name!r} ({err}); check the dotted path and that the package is "
                "installed"
            ) from err
        if not isinstance(found, type) or not hasattr(found, "fit"):
            raise TrainingError(f"algorithm {self.algorithm!r} is not an estimator class")
        return found

    def _fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray[Any, Any],
        X_valid: pd.DataFrame | None,
        y_valid: np.ndarray[Any, Any] | None,
        on_iteration: OnIteration | None,
    ) -> Pipeline:
        from sklearn.base import is_classifier, is_regressor
        from sklearn.pipeline import Pipeline

        estimator_class = self.estimator_class()
        try:
            estimator = estimator_class(**self.params or {})
        except TypeError as err:
            raise TrainingError(f"algorithm {self.algorithm!r}: bad params ({err})") from err
        if Task(self.task) is Task.regression and not is_regressor(estimator):
            raise TrainingError(
                f"algorithm {self.algorithm!r} is not a regressor; the task is regression"
            )
        if Task(self.task) is not Task.regression and not is_classifier(estimator):
            raise TrainingError(
                f"algorithm {self.algorithm!r} is not a classifier; the task is {self.task}"
            )
        accepted = estimator.get_params(deep=False)
        fixed: dict[str, Any] = {}
        if "random_state" in accepted and "random_state" not in (self.params or {}):
            fixed["random_state"] = self.seed
        if "n_jobs" in accepted and "n_jobs" not in (self.params or {}):
            fixed["n_jobs"] = self.n_jobs
        estimator.set_params(**fixed)
        scale = not estimator_class.__module__.startswith(_UNSCALED_MODULES)
        preprocess = make_preprocessor(self.feature_schema, scale=scale, one_hot=True)
        pipeline = Pipeline([("preprocess", preprocess), ("model", estimator)])
        try:
            pipeline.fit(X, y)
        except (ValueError, TypeError) as err:
            raise TrainingError(f"{self.algorithm} failed to train: {err}") from err
        return pipeline

    def set_num_threads(self, n: int) -> None:
        """Use ``n`` threads if the estimator takes ``n_jobs`` (BLAS threads are not set)."""
        self.n_jobs = n
        if self.pipeline_ is not None and "n_jobs" in self.pipeline_[-1].get_params(deep=False):
            self.pipeline_[-1].set_params(n_jobs=n)

    @classmethod
    def _from_manifest(cls, manifest: Mapping[str, Any]) -> SklearnAlgorithm:
        return cls(
            manifest["algorithm"].removeprefix(PREFIX),
            task=Task(manifest["task"]),
            feature_schema=manifest["feature_schema"],
            params=manifest["params"],
            seed=manifest["seed"],
        )
