"""Predictions with ONNX Runtime, from a verified ONNX export: numpy in, numpy out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from conveyor.errors import RegistryError
from conveyor.serving.runtimes._base import BaseRuntime, Prediction
from conveyor.spec._metrics import Task
from conveyor.train._dataset import FeatureKind

if TYPE_CHECKING:
    import numpy as np

    from conveyor.train.onnx import OnnxPredictor

__all__ = ["OnnxRuntime"]


class OnnxRuntime(BaseRuntime):
    """A model's ONNX export run by onnxruntime (the fast runtime; no pandas, no sklearn).

    Use it only for exports verified against the native model (registry tag
    ``conveyor.onnx_verified`` is ``"true"``): they answer what the native model answers
    within 1e-5. Classification runs the graph once and takes the labels from the
    probabilities.

    Args:
        model_dir: The Conveyor model folder the export belongs to (its manifest gives the
            features, classes and task).
        onnx_path: The ``model.onnx`` file.
        threads: onnxruntime's intra-op threads.
    """

    kind: ClassVar[str] = "onnx"

    def __init__(self, model_dir: Path, onnx_path: Path, *, threads: int = 1) -> None:
        super().__init__(model_dir, threads=threads)
        self.onnx_path = onnx_path
        self._predictor: OnnxPredictor | None = None
        self._classifier = False
        self._schema: Mapping[str, FeatureKind] = {}

    def _load(self, manifest: Mapping[str, Any]) -> None:
        from conveyor.errors import TrainingError
        from conveyor.train.onnx import OnnxPredictor

        classes = manifest.get("classes")
        try:
            data = Path(self.onnx_path).read_bytes()
            schema = _in_graph_order(data, manifest["feature_schema"])
            self._predictor = OnnxPredictor(
                data,
                schema,
                classes=None if classes is None else tuple(classes),
                task=Task(manifest["task"]),
                threads=self.threads,
            )
        except (OSError, TrainingError) as err:
            raise RegistryError(f"cannot load the ONNX model {self.onnx_path}: {err}") from err
        except Exception as err:  # onnxruntime raises its own exception types for bad graphs
            raise RegistryError(
                f"onnxruntime cannot load {self.onnx_path}: {str(err).strip()[:300]}"
            ) from err
        self._classifier = Task(manifest["task"]) is not Task.regression
        self._schema = schema

    @property
    def feature_schema(self) -> Mapping[str, FeatureKind]:
        """Feature kinds by name, in the ONNX graph's input order."""
        self._loaded()
        return self._schema

    def predict(self, columns: Mapping[str, np.ndarray[Any, Any]]) -> Prediction:
        """Predictions for the rows of ``columns`` (see :class:`BaseRuntime`)."""
        predictor = self._predictor
        if predictor is None:
            raise self._not_loaded()
        if self._classifier:
            return self._labels_from(predictor.predict_proba(columns))
        return Prediction(predictor.predict(columns), None)


def _in_graph_order(data: bytes, schema: Mapping[str, FeatureKind]) -> dict[str, FeatureKind]:
    """``schema`` reordered as the graph's inputs (a manifest's keys are sorted).

    Raises:
        TrainingError: The graph's inputs are not the schema's features.
    """
    import onnxruntime

    from conveyor.errors import TrainingError

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        data, sess_options=options, providers=["CPUExecutionProvider"]
    )
    names = [item.name for item in session.get_inputs()]
    if sorted(names) != sorted(schema):
        raise TrainingError(
            f"the ONNX model's inputs {names} are not the features {list(schema)}; export "
            "and model folder belong to different models"
        )
    return {name: schema[name] for name in names}
