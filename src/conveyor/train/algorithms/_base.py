"""The algorithm adapter interface every model family implements."""

from __future__ import annotations

import json
import pickle
import platform
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self

from conveyor.errors import TrainingError
from conveyor.spec._metrics import Task
from conveyor.train._dataset import FeatureKind
from conveyor.train.algorithms._preprocess import coerce_frame

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

__all__ = ["MANIFEST", "BaseAlgorithm", "OnIteration", "pop_aliases", "set_estimator_threads"]

OnIteration = Callable[[int, dict[str, float]], None]
"""Called after each boosting round / epoch with its 0-based index and validation metrics."""

MANIFEST: Final = "manifest.json"
"""The JSON file, next to the model files, that says how to load them."""

MODEL_FILE: Final = "model.pkl"
"""The pickled, fitted scikit-learn pipeline (preprocessing and estimator)."""

PICKLE_PROTOCOL: Final = 5
FORMAT_VERSION: Final = 1
_LIBRARIES: Final = ("numpy", "pandas", "scikit-learn", "lightgbm")


class BaseAlgorithm(ABC):
    """A model: preprocessing plus an estimator, trained, saved and loaded as one.

    Invariants every adapter keeps (scikit-learn's estimator rules):

    * ``__init__`` only stores its arguments; nothing is validated or computed there.
    * :meth:`fit` does all the work. Every random source is seeded from ``seed``, so the
      same data, parameters and seed give the same model and the same saved bytes.
    * :meth:`predict` and :meth:`predict_proba` are pure: they take a DataFrame with the
      feature columns (extra columns are ignored) or an array with exactly those columns in
      ``feature_schema`` order, and do not change the model.
    * Preprocessing (imputation, scaling, encoding, datetime parts) is part of the model, so
      whoever loads it applies the very transforms used in training. Unknown categories and
      missing values at prediction time do not fail.
    * Thread count is a parameter (``n_jobs``), changeable after loading with
      :meth:`set_num_threads` so a server can pin one thread per worker.
    * For classification, ``classes_`` are the sorted labels seen in training;
      :meth:`predict_proba` columns follow that order and :meth:`predict` returns labels.
    * Errors in the data or settings are :class:`~conveyor.errors.TrainingError`.

    Subclasses implement :meth:`_fit` and :meth:`set_num_threads`, and set ``kind`` (the name
    under which :meth:`load` finds them).
    """

    kind: ClassVar[str]
    _registry: ClassVar[dict[str, type[BaseAlgorithm]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            BaseAlgorithm._registry[cls.kind] = cls

    def __init__(
        self,
        *,
        task: Task,
        feature_schema: Mapping[str, FeatureKind],
        params: Mapping[str, Any] | None = None,
        seed: int = 42,
        n_jobs: int | None = None,
    ) -> None:
        self.task = task
        self.feature_schema = feature_schema
        self.params = params
        self.seed = seed
        self.n_jobs = n_jobs
        self.pipeline_: Pipeline | None = None
        self.classes_: tuple[Any, ...] | None = None

    @property
    @abstractmethod
    def algorithm(self) -> str:
        """The spec's ``algorithm`` string, e.g. ``'lightgbm'``."""

    @abstractmethod
    def _fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray[Any, Any],
        X_valid: pd.DataFrame | None,
        y_valid: np.ndarray[Any, Any] | None,
        on_iteration: OnIteration | None,
    ) -> Pipeline:
        """Fit and return the pipeline; X are coerced frames, y class codes or floats."""

    @abstractmethod
    def set_num_threads(self, n: int) -> None:
        """Use ``n`` threads from now on (training and prediction)."""

    @property
    def is_classifier(self) -> bool:
        """Whether the task is a classification task."""
        return Task(self.task) is not Task.regression

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        X_valid: Any = None,
        y_valid: Any = None,
        on_iteration: OnIteration | None = None,
    ) -> Self:
        """Train on ``X``/``y``; ``X_valid``/``y_valid`` feed early stopping and metrics.

        Raises:
            TrainingError: A feature column is missing, the target has fewer than two
                classes, or the validation target has labels the training target lacks.
        """
        import numpy as np

        if (X_valid is None) != (y_valid is None):
            raise TrainingError("pass both X_valid and y_valid, or neither")
        y_codes = np.asarray(y)
        valid_codes = None if y_valid is None else np.asarray(y_valid)
        if self.is_classifier:
            labels = np.unique(y_codes)
            if len(labels) < 2:
                raise TrainingError(f"the training target has one class only ({labels[0]!r})")
            self.classes_ = tuple(labels.tolist())
            y_codes = self._encode(y_codes, "training")
            if valid_codes is not None:
                valid_codes = self._encode(valid_codes, "validation")
        else:
            y_codes = y_codes.astype(np.float64)
            valid_codes = None if valid_codes is None else valid_codes.astype(np.float64)
        schema = self.feature_schema
        self.pipeline_ = self._fit(
            coerce_frame(X, schema),
            y_codes,
            None if X_valid is None else coerce_frame(X_valid, schema),
            valid_codes,
            on_iteration,
        )
        return self

    def _encode(self, y: np.ndarray[Any, Any], part: str) -> np.ndarray[Any, Any]:
        import numpy as np

        classes = np.asarray(self.classes_, dtype=y.dtype if y.dtype.kind in "biu" else object)
        codes = np.searchsorted(classes, y)
        codes = np.clip(codes, 0, len(classes) - 1)
        unknown = classes[codes] != y
        if unknown.any():
            raise TrainingError(
                f"the {part} target has labels not in the training target: "
                f"{sorted(set(np.asarray(y)[unknown].tolist()))[:10]}"
            )
        return codes.astype(np.int64)

    def _fitted(self) -> Pipeline:
        if self.pipeline_ is None:
            raise TrainingError(f"this {type(self).__name__} is not fitted; call fit() first")
        return self.pipeline_

    def predict(self, X: Any) -> np.ndarray[Any, Any]:
        """Predicted labels (classification) or values (regression), one per row."""
        import numpy as np

        predicted = self._fitted().predict(coerce_frame(X, self.feature_schema))
        if not self.is_classifier:
            return np.asarray(predicted, dtype=np.float64)
        classes = np.asarray(self.classes_)
        return classes[np.asarray(predicted, dtype=np.int64)]

    def predict_proba(self, X: Any) -> np.ndarray[Any, Any]:
        """Class probabilities, shape ``(rows, len(classes_))``, columns in ``classes_`` order.

        Raises:
            TrainingError: The task is regression, or the estimator has no probabilities.
        """
        import numpy as np

        pipeline = self._fitted()
        if not self.is_classifier:
            raise TrainingError("predict_proba is for classification; this model is a regressor")
        if not hasattr(pipeline, "predict_proba"):
            raise TrainingError(f"{self.algorithm} does not predict probabilities")
        proba = pipeline.predict_proba(coerce_frame(X, self.feature_schema))
        return np.asarray(proba, dtype=np.float64)

    def manifest(self) -> dict[str, Any]:
        """What :meth:`save` writes to ``manifest.json`` (JSON-ready)."""
        return {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "algorithm": self.algorithm,
            "task": str(self.task),
            "params": dict(self.params or {}),
            "seed": self.seed,
            "feature_schema": dict(self.feature_schema),
            "classes": None if self.classes_ is None else list(self.classes_),
            "versions": {"python": platform.python_version()} | _versions(),
        }

    def save(self, path: Path) -> None:
        """Write the fitted model into the folder ``path`` (created if needed).

        The folder holds ``manifest.json`` and ``model.pkl``; equal models give
        byte-identical files. Loading unpickles: load only models you trust.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._save_model(path, self._fitted())
        text = json.dumps(self.manifest(), indent=2, sort_keys=True, ensure_ascii=False)
        (path / MANIFEST).write_text(text + "\n", encoding="utf-8")

    def _save_model(self, path: Path, pipeline: Pipeline) -> None:
        # Plain pickle: the pipeline's arrays and LightGBM's model text (its booster pickles
        # as ``model_to_string()``) pickle to the same bytes for the same model.
        (path / MODEL_FILE).write_bytes(pickle.dumps(pipeline, protocol=PICKLE_PROTOCOL))

    def _load_model(self, path: Path) -> Pipeline:
        pipeline: Pipeline = pickle.loads((path / MODEL_FILE).read_bytes())
        return pipeline

    @classmethod
    def load(cls, path: Path) -> BaseAlgorithm:
        """Load a model written by :meth:`save`, as the adapter class that wrote it.

        Raises:
            TrainingError: The folder has no manifest, or one of an unknown kind or format.
        """
        path = Path(path)
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise TrainingError(f"{path} holds no saved model ({MANIFEST} is missing)") from err
        if manifest.get("format") != FORMAT_VERSION:
            raise TrainingError(
                f"{path / MANIFEST} has format {manifest.get('format')!r}; this Conveyor "
                f"reads format {FORMAT_VERSION}"
            )
        adapter = cls._registry.get(manifest["kind"])
        if adapter is None or not issubclass(adapter, cls):
            raise TrainingError(f"{path} holds a {manifest['kind']!r} model, not a {cls.__name__}")
        model = adapter._from_manifest(manifest)
        model.classes_ = None if manifest["classes"] is None else tuple(manifest["classes"])
        model.pipeline_ = model._load_model(path)
        return model

    @classmethod
    @abstractmethod
    def _from_manifest(cls, manifest: Mapping[str, Any]) -> BaseAlgorithm:
        """An unfitted adapter with the manifest's parameters."""


def pop_aliases(params: dict[str, Any], aliases: tuple[str, ...], default: Any) -> Any:
    """Remove every name in ``aliases`` from ``params``; the value of the last one present,
    else ``default`` (a library's several names for one setting, e.g. its thread count)."""
    value = default
    for alias in aliases:
        if alias in params:
            value = params.pop(alias)
    return value


def set_estimator_threads(model: BaseAlgorithm, n: int, aliases: tuple[str, ...]) -> None:
    """``set_num_threads`` of an adapter whose estimator takes ``n_jobs``: from now on ``n``
    threads, overriding a thread count in its ``params`` (one of ``aliases``)."""
    model.n_jobs = n
    if model.params is not None and any(alias in model.params for alias in aliases):
        model.params = {k: v for k, v in model.params.items() if k not in aliases}
    if model.pipeline_ is not None:
        model.pipeline_[-1].set_params(n_jobs=n)


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
