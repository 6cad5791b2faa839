"""Export a fitted model to ONNX and check that it predicts what the native model does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from conveyor.train.onnx._convert import convert_pipeline, unsupported_reason
from conveyor.train.onnx._predictor import OnnxPredictor

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from conveyor.train.algorithms import BaseAlgorithm

__all__ = ["OnnxExport", "export_onnx"]

TAG_PREFIX: Final = "conveyor.onnx_"

_NOT_EXPORTED: Final = ("torch_mlp",)


@dataclass(frozen=True)
class OnnxExport:
    """The outcome of :func:`export_onnx`.

    Attributes:
        data: The serialized ONNX model; None when the model cannot be converted.
        verified: Whether ONNX and native predictions matched on the check rows.
        max_abs_diff: The largest ``|onnx - native|`` over probabilities (classification)
            or predictions (regression); None when nothing was compared.
        rows_checked: How many rows were compared.
        reason: Why the model was not exported or not verified (one line); None if verified.
        input_names: The ONNX graph's inputs in order: one per feature, named after it.
    """

    data: bytes | None
    verified: bool
    max_abs_diff: float | None
    rows_checked: int
    reason: str | None
    input_names: tuple[str, ...]

    def tags(self) -> dict[str, str]:
        """Run tags: ``conveyor.onnx_verified`` always, ``..._max_abs_diff`` and
        ``..._reason`` when known."""
        tags = {f"{TAG_PREFIX}verified": "true" if self.verified else "false"}
        if self.max_abs_diff is not None:
            tags[f"{TAG_PREFIX}max_abs_diff"] = f"{self.max_abs_diff:.3g}"
        if self.reason is not None:
            tags[f"{TAG_PREFIX}reason"] = self.reason
        return tags


def export_onnx(
    model: BaseAlgorithm,
    X_check: pd.DataFrame,
    *,
    tolerance: float = 1e-5,
    max_rows: int = 10_000,
) -> OnnxExport:
    """Convert the whole fitted pipeline to ONNX and verify it on rows of ``X_check``.

    The graph computes in double precision wherever the native model does (LightGBM
    thresholds, scikit-learn preprocessing and linear models); XGBoost's trees get float32
    features, as XGBoost itself does. The model is verified when the largest absolute
    difference from the native predictions on the first ``max_rows`` rows of ``X_check``
    (the holdout, with its missing values and unseen categories) is at most ``tolerance``.

    Models that cannot be converted (datetime features, neural networks, estimators
    skl2onnx has no converter for) are not errors: the result has ``data=None`` and a reason.

    Raises:
        TrainingError: The model is not fitted, or ``X_check`` lacks feature columns.
    """
    pipeline = model._fitted()
    schema = dict(model.feature_schema)
    names = tuple(schema)

    def failed(reason: str, data: bytes | None = None) -> OnnxExport:
        return OnnxExport(data, False, None, 0, reason, names)

    if model.kind in _NOT_EXPORTED:
        return failed(f"{model.algorithm} models are not exported to ONNX")
    reason = unsupported_reason(schema, pipeline)
    if reason is not None:
        return failed(reason)
    try:
        data = convert_pipeline(pipeline, schema)
    except Exception as err:  # skl2onnx raises many kinds for what it cannot convert
        estimator = type(pipeline.steps[-1][1]).__name__
        return failed(f"skl2onnx cannot convert this {estimator} pipeline: {_first_line(err)}")
    return _verify(model, data, X_check, tolerance=tolerance, max_rows=max_rows)


def _verify(
    model: BaseAlgorithm, data: bytes, X_check: pd.DataFrame, *, tolerance: float, max_rows: int
) -> OnnxExport:
    from conveyor.train.algorithms._preprocess import coerce_frame

    names = tuple(model.feature_schema)
    rows = coerce_frame(X_check, model.feature_schema).iloc[:max_rows]
    if len(rows) == 0:
        return OnnxExport(data, False, None, 0, "no rows to verify the ONNX model on", names)
    columns = {name: rows[name].to_numpy() for name in names}
    try:
        predictor = OnnxPredictor(
            data, model.feature_schema, classes=model.classes_, task=model.task
        )
        if model.is_classifier:
            native, converted = model.predict_proba(rows), predictor.predict_proba(columns)
        else:
            native, converted = model.predict(rows), predictor.predict(columns)
    except Exception as err:  # onnxruntime rejects some graphs skl2onnx writes
        failure = f"onnxruntime cannot run it: {_first_line(err)}"
        return OnnxExport(data, False, None, 0, failure, names)
    diff = _max_abs_diff(native, converted)
    verified = diff <= tolerance
    reason: str | None = None
    if not verified:
        reason = (
            f"ONNX predictions differ from the native model's by up to {diff:.3g} on "
            f"{len(rows)} rows (tolerance {tolerance:g})"
        )
    return OnnxExport(data, verified, diff, len(rows), reason, names)


def _max_abs_diff(native: np.ndarray[Any, Any], converted: np.ndarray[Any, Any]) -> float:
    import numpy as np

    if native.shape != converted.shape:
        return float("inf")
    both_nan = np.isnan(native) & np.isnan(converted)
    diff = np.where(both_nan, 0.0, np.abs(native - converted))
    # A NaN on one side only is a mismatch.
    return float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0))


def _first_line(err: Exception, limit: int = 200) -> str:
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
