"""Predictions from an exported ONNX model with onnxruntime: numpy in, numpy out."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.errors import TrainingError
from conveyor.spec._metrics import Task
from conveyor.train._dataset import FeatureKind
from conveyor.train.onnx._convert import MISSING_CATEGORY

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BLOCK_INPUT", "OnnxPredictor"]

BLOCK_INPUT = "conveyor_numeric_block"
"""The single (rows, features) float64 input of an all-numeric model (see ``_with_block_input``)."""


class OnnxPredictor:
    """An ONNX model written by :func:`~conveyor.train.onnx.export_onnx`, ready to predict.

    Takes one numpy array per feature (a mapping from feature name to values; extra keys
    are ignored), all of the same length, as :func:`~conveyor.train.algorithms._preprocess.
    coerce_frame` would see them: numbers or booleans for numeric and boolean features (NaN
    or None for missing), strings for categorical ones (None or NaN for missing; other
    values are compared as ``str(value)``). Unknown categories and missing values give the
    answers the native model gives. No pandas is used; predictions are thread-safe.

    Args:
        data: The serialized ONNX model (``OnnxExport.data``).
        feature_schema: The model's feature kinds, in training order.
        classes: The class labels in ``predict_proba`` column order; None for regression.
        task: The model's task.
        threads: onnxruntime's intra-op threads (1 in a multi-worker server).
    """

    def __init__(
        self,
        data: bytes,
        feature_schema: Mapping[str, FeatureKind],
        *,
        classes: tuple[Any, ...] | None,
        task: Task,
        threads: int = 1,
    ) -> None:
        import numpy as np
        import onnxruntime

        self.feature_schema = dict(feature_schema)
        self.task = Task(task)
        self.classes = classes
        self.threads = threads
        if self.task is not Task.regression and not classes:
            raise TrainingError(f"an ONNX predictor for {self.task} needs the class labels")
        self._labels = None if classes is None else np.asarray(classes)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(
            data, sess_options=options, providers=["CPUExecutionProvider"]
        )
        names = [item.name for item in session.get_inputs()]
        if names != list(self.feature_schema):
            raise TrainingError(
                f"the ONNX model's inputs {names} are not the features "
                f"{list(self.feature_schema)}; export and schema belong to different models"
            )
        self._block = False
        self._names = tuple(names)
        if len(names) > 1 and all(item.type == "tensor(double)" for item in session.get_inputs()):
            # One (rows, features) input split inside the graph instead of one input per
            # feature: binding and checking 20 inputs cost more than the trees themselves.
            session = onnxruntime.InferenceSession(
                _with_block_input(data, names),
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
            self._block = True
        self._session = session
        self._outputs = [output.name for output in session.get_outputs()]

    def predict_proba(self, columns: Mapping[str, np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
        """Class probabilities, shape ``(rows, len(classes))``, columns in ``classes`` order.

        Raises:
            TrainingError: The model is a regressor, or a feature column is missing.
        """
        import numpy as np

        if self.task is Task.regression:
            raise TrainingError("predict_proba is for classification; this model is a regressor")
        (proba,) = self._session.run(self._outputs[1:2], self._feeds(columns))
        return np.asarray(proba, dtype=np.float64)

    def predict(self, columns: Mapping[str, np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
        """Predicted labels (classification) or values (regression), one per row.

        Raises:
            TrainingError: A feature column is missing.
        """
        import numpy as np

        (predicted,) = self._session.run(self._outputs[:1], self._feeds(columns))
        if self._labels is None:
            return np.asarray(predicted, dtype=np.float64).reshape(-1)
        return self._labels[np.asarray(predicted, dtype=np.int64).reshape(-1)]

    def _feeds(self, columns: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, Any]:
        import numpy as np

        if self._block:
            block = getattr(columns, "rows", None)
            if block is not None and getattr(columns, "names", None) == self._names:
                return {BLOCK_INPUT: block}  # the server's validated all-numeric requests
            feeds = self._column_feeds(columns)
            return {BLOCK_INPUT: np.ascontiguousarray(np.hstack(list(feeds.values())))}
        return self._column_feeds(columns)

    def _column_feeds(self, columns: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, Any]:
        import numpy as np

        missing = [name for name in self.feature_schema if name not in columns]
        if missing:
            raise TrainingError(
                f"input lacks feature columns {missing}; the model needs "
                f"{list(self.feature_schema)}"
            )
        feeds = {}
        rows = None
        for name, kind in self.feature_schema.items():
            column = columns[name]
            if kind == "categorical":
                values = _categories(column)
            elif type(column) is np.ndarray and column.dtype == np.float64 and column.ndim == 1:
                values = column  # the server's validated columns: no conversion needed
            else:
                values = _numbers(column)
            if rows is None:
                rows = len(values)
            elif len(values) != rows:
                raise TrainingError(
                    f"feature column {name!r} has {len(values)} values; earlier ones have {rows}"
                )
            feeds[name] = values.reshape(-1, 1)
        return feeds


def _numbers(values: Any) -> np.ndarray[Any, Any]:
    import numpy as np

    array = np.asarray(values)
    if array.dtype.kind in "biuf":
        return array.astype(np.float64, copy=False).reshape(-1)
    # Objects: None means missing; anything that is not a number too (as in training).
    return np.fromiter(
        (_number(value) for value in array.reshape(-1)), dtype=np.float64, count=array.size
    )


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _categories(values: Any) -> np.ndarray[Any, Any]:
    import numpy as np

    array = np.asarray(values).reshape(-1)
    if array.dtype.kind == "U":
        return array.astype(object)
    return np.array([_category(value) for value in array], dtype=object)


def _category(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING_CATEGORY
    return str(value)


def _with_block_input(data: bytes, names: list[str]) -> bytes:
    """The model with one (rows, features) double input, split into the original inputs."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(data)
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    block = helper.make_tensor_value_info(BLOCK_INPUT, TensorProto.DOUBLE, [None, len(names)])
    if opset >= 13:
        sizes = helper.make_tensor(
            f"{BLOCK_INPUT}_sizes", TensorProto.INT64, [len(names)], [1] * len(names)
        )
        graph.initializer.append(sizes)
        split = helper.make_node("Split", [BLOCK_INPUT, sizes.name], names, axis=1)
    else:
        split = helper.make_node("Split", [BLOCK_INPUT], names, axis=1, split=[1] * len(names))
    del graph.input[:]
    graph.input.append(block)
    graph.node.insert(0, split)
    return bytes(model.SerializeToString())
