"""ONNX export of fitted models, verified against them, and an onnxruntime predictor.

>>> exported = export_onnx(model, X_holdout)                          # doctest: +SKIP
>>> exported.verified, exported.max_abs_diff                          # doctest: +SKIP
>>> OnnxPredictor(exported.data, model.feature_schema, classes=model.classes_,
...               task=model.task).predict_proba({"distance": distances, ...})  # doctest: +SKIP
"""

from conveyor.train.onnx._export import OnnxExport, export_onnx
from conveyor.train.onnx._predictor import OnnxPredictor

__all__ = ["OnnxExport", "OnnxPredictor", "export_onnx"]
