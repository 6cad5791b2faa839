"""XGBoost gradient-boosted trees on ordinal-coded categories."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from conveyor.errors import TrainingError
from conveyor.spec._base import did_you_mean
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

__all__ = ["XGBoostAlgorithm"]

DEFAULTS: Final[Mapping[str, Any]] = {"n_estimators": 200, "learning_rate": 0.05}
"""Used when the spec's ``params`` do not set them."""

_THREAD_ALIASES: Final = ("n_jobs", "nthread")
_SEED_ALIASES: Final = ("random_state", "seed")
# Booster parameters users commonly spell by their native name; XGBoost accepts them too.
_NATIVE_NAMES: Final = ("eta", "lambda", "alpha", "min_split_loss", "max_leaves", "nthread")
_UNUSED: Final = re.compile(r"Parameters: \{(.*?)\} (?:are|is) not used", re.DOTALL)


class XGBoostAlgorithm(BaseAlgorithm):
    """XGBoost through its scikit-learn API, after an ordinal-encoding ColumnTransformer.

    Numbers pass through (NaN is XGBoost's missing value), categories become ordinal codes
    (-1 for missing and unknown values) split on as numbers: XGBoost's native categorical
    splits are not used, so the pipeline stays convertible to ONNX. Training is deterministic:
    ``seed`` and ``tree_method="hist"`` are set unless ``params`` set them. ``params`` are
    XGBoost's (scikit-learn API names or native ones such as ``eta``); a parameter XGBoost
    does not use is a :class:`~conveyor.errors.TrainingError`, and a thread count in them
    (``n_jobs``, ``nthread``) overrides ``n_jobs``. With ``early_stopping_rounds`` in
    ``params``, training stops when the validation metric stops improving (validation data
    is then required) and predictions use the best round.

    Saved bytes are identical for the same data, parameters, seed and thread count (the
    booster's configuration records ``n_jobs``, so pin it for identical bytes across machines).
    """

    kind: ClassVar[str] = "xgboost"

    @property
    def algorithm(self) -> str:
        """Always ``'xgboost'``."""
        return "xgboost"

    def estimator_params(self) -> dict[str, Any]:
        """Keyword arguments of the XGBoost estimator: defaults, then ``params``."""
        params = dict(self.params or {})
        threads = pop_aliases(params, _THREAD_ALIASES, self.n_jobs)
        seed = pop_aliases(params, _SEED_ALIASES, self.seed)
        if "callbacks" in params:
            raise TrainingError("xgboost params cannot set 'callbacks'; use on_iteration")
        return {
            **DEFAULTS,
            "tree_method": "hist",
            "random_state": seed,
            "verbosity": 1,
            **params,
            "n_jobs": threads,
        }

    def manifest(self) -> dict[str, Any]:
        """The base manifest plus XGBoost's version."""
        import xgboost  # installed as xgboost or xgboost-cpu: ask the module, not the metadata

        manifest = super().manifest()
        manifest["versions"]["xgboost"] = xgboost.__version__
        return manifest

    def _fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray[Any, Any],
        X_valid: pd.DataFrame | None,
        y_valid: np.ndarray[Any, Any] | None,
        on_iteration: OnIteration | None,
    ) -> Pipeline:
        import xgboost
        from sklearn.pipeline import Pipeline

        preprocess = make_preprocessor(self.feature_schema, scale=False, one_hot=False)
        # Arrays without feature names, as for LightGBM: the names are
        # ``preprocess.get_feature_names_out()``, and the booster's are f0, f1, ...
        Xt = preprocess.fit_transform(X)
        params = self.estimator_params()
        if on_iteration is not None:
            params["callbacks"] = [_reporter(on_iteration)]
        regression = Task(self.task) is Task.regression
        estimator = (xgboost.XGBRegressor if regression else xgboost.XGBClassifier)(**params)
        fit_args: dict[str, Any] = {"verbose": False}
        if X_valid is not None:
            fit_args["eval_set"] = [(preprocess.transform(X_valid), y_valid)]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                estimator.fit(Xt, y, **fit_args)
            except (ValueError, TypeError, xgboost.core.XGBoostError) as err:
                raise TrainingError(f"xgboost failed to train: {err}") from err
        _check_warnings(caught)
        # The reporter holds the caller's function: it must not be pickled with the model.
        estimator.set_params(callbacks=None)
        return Pipeline([("preprocess", preprocess), ("model", estimator)])

    def set_num_threads(self, n: int) -> None:
        """Train and predict with ``n`` threads (1 in a multi-worker server)."""
        set_estimator_threads(self, n, _THREAD_ALIASES)

    @classmethod
    def _from_manifest(cls, manifest: Mapping[str, Any]) -> XGBoostAlgorithm:
        return cls(
            task=Task(manifest["task"]),
            feature_schema=manifest["feature_schema"],
            params=manifest["params"],
            seed=manifest["seed"],
        )


def _check_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Raise for parameters XGBoost ignored; pass every other warning on."""
    import xgboost

    for record in caught:
        match = _UNUSED.search(str(record.message))
        if match is None:
            warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)
            continue
        unused = [name.strip().strip('"') for name in match.group(1).split(",")]
        known = [*xgboost.XGBModel().get_params(), *_NATIVE_NAMES]
        hints = "".join(did_you_mean(name, known) for name in unused)
        raise TrainingError(
            f"xgboost does not use params {unused}{hints}; see "
            "https://xgboost.readthedocs.io/en/stable/parameter.html"
        )


def _reporter(on_iteration: OnIteration) -> Any:
    """An XGBoost callback passing each round's validation metrics to ``on_iteration``."""
    from xgboost.callback import TrainingCallback

    class Reporter(TrainingCallback):
        def after_iteration(
            self, model: Any, epoch: int, evals_log: Mapping[str, Mapping[str, Any]]
        ) -> bool:
            # One validation set, named ``validation_0`` by the scikit-learn API.
            metrics = {
                f"validation_{metric}": float(history[-1])
                for data in evals_log.values()
                for metric, history in data.items()
            }
            on_iteration(epoch, metrics)
            return False

    return Reporter()
