"""Algorithm adapters: preprocessing plus an estimator, trained, saved and loaded as one.

>>> model = build_algorithm(spec, frame.feature_schema)            # doctest: +SKIP
>>> model.fit(frame.X.iloc[parts.train], frame.y[parts.train])     # doctest: +SKIP
>>> model.save(folder); BaseAlgorithm.load(folder).predict_proba(X)  # doctest: +SKIP
"""

from conveyor.train.algorithms._base import BaseAlgorithm, OnIteration
from conveyor.train.algorithms._build import build_algorithm
from conveyor.train.algorithms._lightgbm import LightGBMAlgorithm
from conveyor.train.algorithms._sklearn import SklearnAlgorithm
from conveyor.train.algorithms._torch import TorchMLPAlgorithm
from conveyor.train.algorithms._xgboost import XGBoostAlgorithm

__all__ = [
    "BaseAlgorithm",
    "LightGBMAlgorithm",
    "OnIteration",
    "SklearnAlgorithm",
    "TorchMLPAlgorithm",
    "XGBoostAlgorithm",
    "build_algorithm",
]
