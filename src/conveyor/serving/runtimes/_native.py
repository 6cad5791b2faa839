"""Predictions with the model's own library (scikit-learn, LightGBM, XGBoost, PyTorch)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from conveyor.errors import RegistryError
from conveyor.serving.runtimes._base import BaseRuntime, Prediction

if TYPE_CHECKING:
    import numpy as np
    from sklearn.pipeline import Pipeline

__all__ = ["NativeRuntime"]


class NativeRuntime(BaseRuntime):
    """A model loaded with :meth:`BaseAlgorithm.load` (the fallback when ONNX is not verified).

    Its pipeline takes a pandas DataFrame, so each prediction builds one from the columns,
    with the dtypes training used (float64 numbers, strings with NaN for missing categories,
    ``datetime64``); that costs tens of microseconds more than :class:`OnnxRuntime`.
    Classification runs the pipeline once (``predict_proba``) and takes the labels from the
    probabilities; classifiers without probabilities answer labels only.

    Args:
        model_dir: A Conveyor model folder.
        threads: The model's prediction threads (``set_num_threads``).
    """

    kind: ClassVar[str] = "native"

    def __init__(self, model_dir: Path, *, threads: int = 1) -> None:
        super().__init__(model_dir, threads=threads)
        self._pipeline: Pipeline | None = None
        self._proba = False
        self._regression = False
        self._datetimes: frozenset[str] = frozenset()
        self._names: tuple[str, ...] = ()

    def _load(self, manifest: Mapping[str, Any]) -> None:
        from conveyor.errors import TrainingError
        from conveyor.train.algorithms import BaseAlgorithm

        try:
            model = BaseAlgorithm.load(Path(self.model_dir))
        except (OSError, TrainingError) as err:
            raise RegistryError(f"cannot load the model in {self.model_dir}: {err}") from err
        model.set_num_threads(self.threads)
        pipeline = model.pipeline_
        if pipeline is None:
            raise RegistryError(f"the model in {self.model_dir} is not fitted")
        self._regression = not model.is_classifier
        self._proba = model.is_classifier and hasattr(pipeline, "predict_proba")
        self._datetimes = frozenset(
            name for name, kind in model.feature_schema.items() if kind == "datetime"
        )
        self._names = tuple(model.feature_schema)
        self._pipeline = pipeline

    def predict(self, columns: Mapping[str, np.ndarray[Any, Any]]) -> Prediction:
        """Predictions for the rows of ``columns`` (see :class:`BaseRuntime`)."""
        import numpy as np
        import pandas as pd

        pipeline = self._pipeline
        if pipeline is None:
            raise self._not_loaded()
        frame = pd.DataFrame(
            {name: self._column(columns, name) for name in self._names}, copy=False
        )
        if self._proba:
            return self._labels_from(np.asarray(pipeline.predict_proba(frame), dtype=np.float64))
        predicted = np.asarray(pipeline.predict(frame))
        if self._regression:
            return Prediction(predicted.astype(np.float64, copy=False).reshape(-1), None)
        labels = np.asarray(self.classes)[predicted.astype(np.int64).reshape(-1)]
        return Prediction(labels, None)

    def _column(self, columns: Mapping[str, np.ndarray[Any, Any]], name: str) -> Any:
        values = columns[name]
        if name in self._datetimes and values.dtype.kind != "M":
            import numpy as np

            return np.asarray(values, dtype="datetime64[us]")
        return values
