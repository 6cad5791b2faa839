"""Feature importance of a fitted model, per original feature column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from conveyor.train.algorithms import BaseAlgorithm

__all__ = ["feature_importance"]


def feature_importance(model: BaseAlgorithm) -> dict[str, float] | None:
    """How much each feature column contributes to the model, as shares summing to 1.

    The estimator's importance per model input is summed back to the feature column it came
    from (the one-hot columns of a category, the parts of a datetime), using the names of the
    pipeline's ``preprocess`` step. Sources, by estimator:

    * LightGBM: total split gain (``importance_type="gain"``);
    * XGBoost: total gain (``total_gain``);
    * other scikit-learn estimators: ``feature_importances_``, else the absolute coefficients
      ``|coef_|`` (summed over classes); coefficients measure importance only on comparable
      scales, which the standardised inputs of linear models give.

    Returns:
        Feature column -> share, largest first (every column of ``feature_schema``, zero when
        unused); None when the model is not fitted, the estimator exposes no importance, or
        the importance is zero everywhere.
    """
    import numpy as np

    pipeline = model.pipeline_
    if pipeline is None:
        return None
    raw = _raw_importance(pipeline[-1])
    if raw is None:
        return None
    schema = list(model.feature_schema)
    names = _input_names(pipeline, len(raw), schema)
    if names is None:
        return None
    totals = dict.fromkeys(schema, 0.0)
    for (_, source), value in zip(names, raw.tolist(), strict=True):
        totals[source] += float(value)
    total = sum(totals.values())
    if not np.isfinite(total) or total <= 0:
        return None
    return dict(sorted(((k, v / total) for k, v in totals.items()), key=lambda kv: -kv[1]))


def _raw_importance(estimator: Any) -> NDArray[np.float64] | None:
    """Non-negative importance per model input, or None."""
    import numpy as np

    booster = getattr(estimator, "booster_", None)
    if booster is not None and type(estimator).__module__.startswith("lightgbm"):
        return np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64)
    if type(estimator).__module__.startswith("xgboost") and hasattr(estimator, "get_booster"):
        booster = estimator.get_booster()
        scores = booster.get_score(importance_type="total_gain")
        names = booster.feature_names or [f"f{i}" for i in range(booster.num_features())]
        return np.asarray([scores.get(name, 0.0) for name in names], dtype=np.float64)
    values = getattr(estimator, "feature_importances_", None)
    if values is not None:
        return np.abs(np.asarray(values, dtype=np.float64)).reshape(-1)
    coef = getattr(estimator, "coef_", None)
    if coef is not None:
        coef = np.abs(np.asarray(coef, dtype=np.float64))
        return coef.sum(axis=0) if coef.ndim == 2 else coef.reshape(-1)
    return None


def _input_names(pipeline: Any, n: int, schema: Sequence[str]) -> list[tuple[str, str]] | None:
    """``(model input name, source feature)`` for each of the ``n`` model inputs, or None."""
    preprocess = (
        pipeline.named_steps.get("preprocess") if hasattr(pipeline, "named_steps") else None
    )
    if preprocess is None:
        return [(name, name) for name in schema] if n == len(schema) else None
    pairs: list[tuple[str, str]] = []
    output = getattr(preprocess, "output_indices_", None)
    if output is None:
        return None
    for step, columns in _fitted_columns(preprocess).items():
        # output_indices_ gives each step's slice of the model inputs, so a feature is found
        # among its own step's columns only, never by guessing at the joined names.
        block = output[step]
        names = _step_names(preprocess.named_transformers_[step], columns)
        if len(names) != block.stop - block.start:
            return None
        for name in names:
            source = _source(name, columns)
            if source is None:
                return None
            pairs.append((name, source))
    return pairs if len(pairs) == n else None


def _fitted_columns(preprocess: Any) -> Mapping[str, list[str]]:
    return {
        step: list(columns)
        for step, transformer, columns in preprocess.transformers_
        if not (isinstance(transformer, str) and transformer == "drop") and len(columns)
    }


def _step_names(transformer: Any, columns: list[str]) -> list[str]:
    if isinstance(transformer, str):  # "passthrough"
        return columns
    return [str(name) for name in transformer.get_feature_names_out(columns)]


def _source(name: str, columns: list[str]) -> str | None:
    """The longest of ``columns`` that ``name`` is or starts with (``<column>_<part>``)."""
    if name in columns:
        return name
    matches = [column for column in columns if name.startswith(column + "_")]
    if matches:
        return max(matches, key=len)
    # A transformer that renamed its inputs entirely: only a single input is unambiguous.
    return columns[0] if len(columns) == 1 else None
