"""Serving registered models: loading verified model versions, runtimes, request inputs.

>>> loaded = load_model("models:/flights@champion", tracking_uri=t, cache_dir=d)  # doctest: +SKIP
>>> columns = columns_from_records(records, loaded.runtime.feature_schema)  # doctest: +SKIP
>>> loaded.runtime.predict(columns).probabilities  # doctest: +SKIP

Only numpy runs per request: payloads become one array per feature (:mod:`._inputs`), and
the runtime (ONNX Runtime when the export is verified, the native model otherwise) predicts.
"""

from conveyor.serving._batching import MicroBatcher
from conveyor.serving._inputs import (
    InputError,
    columns_from_arrays,
    columns_from_records,
    columns_from_split,
)
from conveyor.serving._loading import LoadedModel, load_model, parse_model_uri
from conveyor.serving._metrics import ServerMetrics
from conveyor.serving._predlog import FlushStats, PredictionLog
from conveyor.serving.runtimes import BaseRuntime, NativeRuntime, OnnxRuntime, Prediction

__all__ = [
    "BaseRuntime",
    "FlushStats",
    "InputError",
    "LoadedModel",
    "MicroBatcher",
    "NativeRuntime",
    "OnnxRuntime",
    "Prediction",
    "PredictionLog",
    "ServerMetrics",
    "columns_from_arrays",
    "columns_from_records",
    "columns_from_split",
    "load_model",
    "parse_model_uri",
]
