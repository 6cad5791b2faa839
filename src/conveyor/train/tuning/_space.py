"""The search space: spec ranges as Optuna suggestions, and the names an algorithm accepts."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.errors import TrainingError
from conveyor.spec._base import did_you_mean
from conveyor.spec._tune import CategoricalParam, FloatParam, IntParam, ParamSpace

if TYPE_CHECKING:
    import optuna

    from conveyor.spec._model import ModelSpec

__all__ = ["check_params", "check_space", "suggest"]


def suggest(trial: optuna.Trial, space: Mapping[str, ParamSpace]) -> dict[str, Any]:
    """Sample one value per hyperparameter of ``space`` through ``trial.suggest_*``.

    ``FloatParam`` becomes ``suggest_float(low, high, log=, step=)``, ``IntParam``
    ``suggest_int(low, high, step=, log=)`` and ``CategoricalParam``
    ``suggest_categorical(choices)``.
    """
    params: dict[str, Any] = {}
    for name, param in space.items():
        if isinstance(param, FloatParam):
            params[name] = trial.suggest_float(
                name, param.low, param.high, log=param.log, step=param.step
            )
        elif isinstance(param, IntParam):
            params[name] = trial.suggest_int(
                name, param.low, param.high, step=param.step, log=param.log
            )
        elif isinstance(param, CategoricalParam):
            params[name] = trial.suggest_categorical(name, param.choices)
        else:  # pragma: no cover - the spec's discriminated union has no other member
            raise TypeError(f"unknown search space entry {param!r}")
    return params


def check_space(spec: ModelSpec) -> None:
    """Fail early when the search space is empty or names a parameter the algorithm ignores.

    LightGBM silently accepts unknown parameters and scikit-learn estimators fail only when
    fitted, so without this check every trial would train the same model or fail.

    Raises:
        TrainingError: No ``model.tune`` section, an empty space, or a parameter name the
            algorithm does not accept (named, with the closest accepted one).
    """
    if spec.tune is None:
        raise TrainingError("model.tune is not set; add a tune section with a search space")
    if not spec.tune.space:
        raise TrainingError("model.tune.space is empty; name at least one hyperparameter")
    accepted = _accepted_params(spec)
    if accepted is None:
        return
    for name in spec.tune.space:
        if name not in accepted:
            raise TrainingError(
                f"model.tune.space.{name}: algorithm {spec.algorithm!r} has no parameter "
                f"{name!r}" + did_you_mean(name, sorted(accepted))
            )


def check_params(spec: ModelSpec) -> None:
    """Fail early when ``model.params`` names a parameter the algorithm does not take.

    Raises:
        TrainingError: the unknown name, with the closest accepted one.
    """
    if not spec.params:
        return
    accepted = _accepted_params(spec)
    if accepted is None:
        return
    for name in spec.params:
        if name not in accepted:
            raise TrainingError(
                f"model.params.{name}: algorithm {spec.algorithm!r} has no parameter "
                f"{name!r}" + did_you_mean(name, sorted(accepted))
            )


def _accepted_params(spec: ModelSpec) -> set[str] | None:
    """Parameter names (and aliases) the algorithm takes, or None if it cannot tell."""
    if spec.algorithm == "lightgbm":
        import lightgbm

        names = set(lightgbm.LGBMModel().get_params())
        try:
            from lightgbm.basic import _ConfigAliases

            aliases: Mapping[str, Any] = _ConfigAliases._get_all_param_aliases()
        except (ImportError, AttributeError):  # a LightGBM without this helper: don't guess
            return None
        for name, alias_list in aliases.items():
            names.add(name)
            names.update(alias_list)
        return names
    if spec.algorithm.startswith("sklearn:"):
        from conveyor.train.algorithms import SklearnAlgorithm

        adapter = SklearnAlgorithm(
            spec.algorithm.removeprefix("sklearn:"), task=spec.task, feature_schema={}
        )
        parameters = inspect.signature(adapter.estimator_class()).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return None
        return {p.name for p in parameters}
    return None
