"""Choosing the adapter for a model spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from conveyor.errors import TrainingError
from conveyor.train._dataset import FeatureKind
from conveyor.train.algorithms._base import BaseAlgorithm
from conveyor.train.algorithms._lightgbm import LightGBMAlgorithm
from conveyor.train.algorithms._sklearn import PREFIX, SklearnAlgorithm
from conveyor.train.algorithms._torch import TorchMLPAlgorithm, import_torch
from conveyor.train.algorithms._xgboost import XGBoostAlgorithm

if TYPE_CHECKING:
    from conveyor.spec._model import ModelSpec

__all__ = ["ADAPTERS", "build_algorithm"]

ADAPTERS: Final[Mapping[str, type[BaseAlgorithm]]] = {
    "lightgbm": LightGBMAlgorithm,
    "xgboost": XGBoostAlgorithm,
    "torch_mlp": TorchMLPAlgorithm,
}
"""The built-in algorithms by spec name; ``sklearn:<module.Class>`` is handled apart."""


def build_algorithm(
    spec: ModelSpec, feature_schema: Mapping[str, FeatureKind], *, n_jobs: int | None = None
) -> BaseAlgorithm:
    """The unfitted adapter for ``spec.algorithm``, seeded with ``spec.split.seed``.

    Raises:
        TrainingError: The algorithm is unknown, or ``torch_mlp`` without PyTorch installed
            (the message names the extra to install).
    """
    seed = spec.split.seed
    if spec.algorithm == "torch_mlp":
        import_torch()  # fail here, with the install hint, rather than in the middle of fit
    adapter = ADAPTERS.get(spec.algorithm)
    if adapter is not None:
        return adapter(
            task=spec.task,
            feature_schema=feature_schema,
            params=spec.params,
            seed=seed,
            n_jobs=n_jobs,
        )
    if spec.algorithm.startswith(PREFIX):
        return SklearnAlgorithm(
            spec.algorithm.removeprefix(PREFIX),
            task=spec.task,
            feature_schema=feature_schema,
            params=spec.params,
            seed=seed,
            n_jobs=n_jobs,
        )
    raise TrainingError(
        f"algorithm {spec.algorithm!r} is not available in this version of Conveyor; use "
        f"{', '.join(map(repr, ADAPTERS))} or 'sklearn:<module.Class>'"
    )
