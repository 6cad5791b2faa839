"""Choosing the adapter for a model spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from conveyor.errors import TrainingError
from conveyor.train._dataset import FeatureKind
from conveyor.train.algorithms._base import BaseAlgorithm
from conveyor.train.algorithms._lightgbm import LightGBMAlgorithm
from conveyor.train.algorithms._sklearn import PREFIX, SklearnAlgorithm

if TYPE_CHECKING:
    from conveyor.spec._model import ModelSpec

__all__ = ["build_algorithm"]


def build_algorithm(
    spec: ModelSpec, feature_schema: Mapping[str, FeatureKind], *, n_jobs: int | None = None
) -> BaseAlgorithm:
    """The unfitted adapter for ``spec.algorithm``, seeded with ``spec.split.seed``.

    Raises:
        TrainingError: The algorithm is not available in this version (``xgboost``,
            ``torch_mlp``).
    """
    seed = spec.split.seed
    if spec.algorithm == "lightgbm":
        return LightGBMAlgorithm(
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
        "'lightgbm' or 'sklearn:<module.Class>'"
    )
