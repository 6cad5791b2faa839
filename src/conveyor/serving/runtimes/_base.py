"""The model runtime interface: a loaded model that turns feature columns into predictions."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from conveyor.errors import RegistryError
from conveyor.spec._metrics import Task
from conveyor.train._dataset import FeatureKind
from conveyor.train.algorithms._base import MANIFEST

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BaseRuntime", "Prediction"]


@dataclass(frozen=True)
class Prediction:
    """What a runtime answers for a batch of rows.

    Attributes:
        labels: One predicted label (classification: the most probable class) or value
            (regression) per row.
        probabilities: Shape ``(rows, len(classes))``, columns in ``classes`` order; None for
            regression or a classifier without probabilities.
    """

    labels: np.ndarray[Any, Any]
    probabilities: np.ndarray[Any, Any] | None


class BaseRuntime(ABC):
    """A model version ready to predict, behind one small interface.

    Invariants every runtime keeps (scikit-learn's estimator rules):

    * ``__init__`` only stores its arguments; :meth:`load` does the I/O (reads the model
      folder) and returns the runtime. ``task``, ``classes`` and ``feature_schema`` are
      known after it.
    * :meth:`predict` is pure and thread-safe: several threads may call it at once on one
      runtime, and it changes nothing. It takes one numpy array per feature, as
      :mod:`conveyor.serving._inputs` makes them (extra keys ignored), and returns new
      arrays the caller owns.
    * For classification, ``labels`` are the most probable classes, so they always agree
      with ``probabilities``, whose columns follow ``classes``.
    * A runtime uses ``threads`` threads per prediction (1 in a multi-worker server).

    Subclasses implement :meth:`_load` and :meth:`predict` and set ``kind``.

    Args:
        model_dir: A Conveyor model folder (``manifest.json`` and the model files).
        threads: Threads per prediction.
    """

    kind: ClassVar[str]

    def __init__(self, model_dir: Path, *, threads: int = 1) -> None:
        self.model_dir = model_dir
        self.threads = threads
        self._manifest: Mapping[str, Any] | None = None
        self._classes_array: np.ndarray[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.model_dir)!r}, threads={self.threads})"

    @property
    def task(self) -> Task:
        """The model's task."""
        return Task(self._loaded()["task"])

    @property
    def classes(self) -> tuple[Any, ...] | None:
        """The class labels in probability column order; None for regression."""
        classes = self._loaded()["classes"]
        return None if classes is None else tuple(classes)

    @property
    def feature_schema(self) -> Mapping[str, FeatureKind]:
        """Feature kinds by name, in training order."""
        schema: Mapping[str, FeatureKind] = self._loaded()["feature_schema"]
        return schema

    def load(self) -> Self:
        """Read the model from ``model_dir``; returns the runtime itself.

        Raises:
            RegistryError: The folder holds no readable Conveyor model.
        """
        path = Path(self.model_dir) / MANIFEST
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise RegistryError(
                f"{path} cannot be read as a Conveyor model manifest: {err}"
            ) from err
        import numpy as np

        self._load(manifest)
        classes = manifest.get("classes")
        self._classes_array = None if classes is None else np.asarray(classes)
        self._manifest = manifest
        return self

    @abstractmethod
    def _load(self, manifest: Mapping[str, Any]) -> None:
        """Load the model files; ``manifest`` is the folder's parsed ``manifest.json``."""

    @abstractmethod
    def predict(self, columns: Mapping[str, np.ndarray[Any, Any]]) -> Prediction:
        """Predictions for the rows of ``columns`` (one array per feature, equal lengths)."""

    def example_columns(self, rows: int = 1) -> dict[str, np.ndarray[Any, Any]]:
        """Columns of ``rows`` rows whose every value is missing: a valid input for any model."""
        import numpy as np

        columns: dict[str, np.ndarray[Any, Any]] = {}
        for name, kind in self.feature_schema.items():
            if kind == "categorical":
                columns[name] = np.full(rows, None, dtype=object)
            elif kind == "datetime":
                columns[name] = np.full(rows, np.datetime64("NaT"), dtype="datetime64[us]")
            else:
                columns[name] = np.full(rows, np.nan)
        return columns

    def warm_up(self) -> Prediction:
        """Predict once on :meth:`example_columns`, so the first real request is not slow."""
        return self.predict(self.example_columns())

    def _labels_from(self, probabilities: np.ndarray[Any, Any]) -> Prediction:
        """The prediction whose labels are the most probable classes."""
        if self._classes_array is None:
            raise RegistryError(f"{self!r} is not a loaded classifier")
        labels = self._classes_array[probabilities.argmax(axis=1)]
        return Prediction(labels, probabilities)

    def _loaded(self) -> Mapping[str, Any]:
        if self._manifest is None:
            raise self._not_loaded()
        return self._manifest

    def _not_loaded(self) -> RegistryError:
        return RegistryError(f"{self!r} is not loaded; call load() first")
