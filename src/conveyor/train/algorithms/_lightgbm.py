"""LightGBM gradient-boosted trees, with native categorical features."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from conveyor.spec._metrics import Task
from conveyor.train.algorithms._base import (
    BaseAlgorithm,
    OnIteration,
    pop_aliases,
    set_estimator_threads,
)
from conveyor.train.algorithms._preprocess import make_preprocessor

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

__all__ = ["LightGBMAlgorithm"]

DEFAULTS: Final[Mapping[str, Any]] = {"n_estimators": 200, "learning_rate": 0.05}
"""Used when the spec's ``params`` do not set them."""

_THREAD_ALIASES: Final = ("n_jobs", "num_threads", "num_thread", "nthread", "nthreads")
_SEED_ALIASES: Final = ("random_state", "seed", "random_seed")


class LightGBMAlgorithm(BaseAlgorithm):
    """LightGBM through its scikit-learn API, after an ordinal-encoding ColumnTransformer.

    Numbers pass through (NaN is LightGBM's missing value), categories become ordinal codes
    that LightGBM splits on natively (-1 for missing and unknown values). Training is
    deterministic: ``seed``, ``deterministic=True`` and ``force_row_wise=True`` are set
    unless ``params`` set them. ``params`` are LightGBM's (scikit-learn API names or aliases);
    a thread count in them (``n_jobs``, ``num_threads``, ...) overrides ``n_jobs``.

    Saved bytes are identical for the same data, parameters, seed and training thread count.
    LightGBM's model text records ``num_threads`` (with ``n_jobs=None``: the machine's
    physical cores), so pin ``n_jobs`` for identical bytes across machines; the trees
    themselves were identical with 1 and 2 threads.
    """

    kind: ClassVar[str] = "lightgbm"

    @property
    def algorithm(self) -> str:
        """Always ``'lightgbm'``."""
        return "lightgbm"

    def estimator_params(self) -> dict[str, Any]:
        """Keyword arguments of the LightGBM estimator: defaults, then ``params``."""
        params = dict(self.params or {})
        threads = pop_aliases(params, _THREAD_ALIASES, self.n_jobs)
        seed = pop_aliases(params, _SEED_ALIASES, self.seed)
        return {
            **DEFAULTS,
            "random_state": seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
            **params,
            "n_jobs": threads,
        }

    def _fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray[Any, Any],
        X_valid: pd.DataFrame | None,
        y_valid: np.ndarray[Any, Any] | None,
        on_iteration: OnIteration | None,
    ) -> Pipeline:
        import lightgbm
        from sklearn.pipeline import Pipeline

        preprocess = make_preprocessor(self.feature_schema, scale=False, one_hot=False)
        Xt = preprocess.fit_transform(X)
        # Categorical columns come last. LightGBM gets no feature names: with names it
        # would warn on every array passed by the pipeline at prediction time; they are
        # ``preprocess.get_feature_names_out()``.
        n_categorical = sum(kind == "categorical" for kind in self.feature_schema.values())
        categorical = list(range(Xt.shape[1] - n_categorical, Xt.shape[1]))
        estimator: Any
        if Task(self.task) is Task.regression:
            estimator = lightgbm.LGBMRegressor(**self.estimator_params())
        else:
            estimator = lightgbm.LGBMClassifier(**self.estimator_params())
        fit_args: dict[str, Any] = {"categorical_feature": categorical}
        if X_valid is not None:
            Xv = preprocess.transform(X_valid)
            if "eval_X" in inspect.signature(estimator.fit).parameters:  # LightGBM >= 4.7
                fit_args.update(eval_X=(Xv,), eval_y=(y_valid,))
            else:
                fit_args["eval_set"] = [(Xv, y_valid)]
            fit_args["eval_names"] = ["validation"]
        if on_iteration is not None:
            fit_args["callbacks"] = [_Reporter(on_iteration)]
        estimator.fit(Xt, y, **fit_args)
        return Pipeline([("preprocess", preprocess), ("model", estimator)])

    def set_num_threads(self, n: int) -> None:
        """Train and predict with ``n`` threads (1 in a multi-worker server)."""
        set_estimator_threads(self, n, _THREAD_ALIASES)

    @classmethod
    def _from_manifest(cls, manifest: Mapping[str, Any]) -> LightGBMAlgorithm:
        return cls(
            task=Task(manifest["task"]),
            feature_schema=manifest["feature_schema"],
            params=manifest["params"],
            seed=manifest["seed"],
        )


class _Reporter:
    """LightGBM callback forwarding each round's validation metrics to ``on_iteration``."""

    order = 30  # after LightGBM's own evaluation logging (10) and early stopping (30) hooks

    def __init__(self, on_iteration: OnIteration) -> None:
        self.on_iteration = on_iteration

    def __call__(self, env: Any) -> None:
        metrics = {
            f"{data}_{metric}": float(value)
            for data, metric, value, *_ in env.evaluation_result_list or ()
        }
        self.on_iteration(env.iteration, metrics)
