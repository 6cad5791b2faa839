"""The MLflow pyfunc flavour of a Conveyor model, so MLflow's own tools can load and serve it.

This is the one module that imports MLflow at its top: a pyfunc model must subclass
``PythonModel``, and MLflow pickles the instance by reference to this class. The package's
``__init__`` imports it only when ``ConveyorPythonModel`` is asked for. Import it before
``mlflow.pyfunc`` to silence the warning MLflow emits while importing that module.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

with warnings.catch_warnings():
    # Importing mlflow.pyfunc warns about a type hint in MLflow's own agent types: noise for
    # Conveyor's users, and an error wherever warnings are errors (as in our tests).
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred", category=UserWarning)
    from mlflow.pyfunc.model import PythonModel

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.pyfunc.model import PythonModelContext

    from conveyor.train.algorithms import BaseAlgorithm

__all__ = ["MODEL_ARTIFACT", "ONNX_ARTIFACT", "PREDICTION", "ConveyorPythonModel", "predictions"]

MODEL_ARTIFACT: Final = "model"
"""Name of the pyfunc artifact holding the Conveyor model folder (``manifest.json`` ...)."""

ONNX_ARTIFACT: Final = "onnx"
"""Name of the pyfunc artifact holding the verified ONNX export, when there is one."""

PREDICTION: Final = "prediction"
"""Column of the predicted label (classification) or value (regression)."""

PROBA_PREFIX: Final = "proba_"
"""Prefix of the per-class probability columns: ``proba_<label>``, in ``classes_`` order."""


def predictions(model: BaseAlgorithm, X: Any) -> pd.DataFrame:
    """What the pyfunc model answers for ``X``: ``prediction`` plus ``proba_<label>`` columns.

    Regression models answer the ``prediction`` column only.
    """
    import pandas as pd

    index = X.index if isinstance(X, pd.DataFrame) else None
    out = pd.DataFrame({PREDICTION: model.predict(X)}, index=index)
    if model.is_classifier and model.classes_ is not None:
        proba = model.predict_proba(X)
        for column, label in enumerate(model.classes_):
            out[f"{PROBA_PREFIX}{label}"] = proba[:, column]
    return out


class ConveyorPythonModel(PythonModel):
    """A Conveyor model folder served through MLflow's pyfunc interface.

    ``load_context`` loads the folder in the ``model`` artifact with
    :meth:`BaseAlgorithm.load <conveyor.train.algorithms.BaseAlgorithm.load>`; ``predict``
    takes a DataFrame of the feature columns and returns a DataFrame with the ``prediction``
    column and, for classifiers, one ``proba_<label>`` column per class. The instance holds no
    state until loaded, so it pickles to a few bytes.
    """

    # MLflow wraps ``predict`` to validate inputs against its type hints; the model's
    # signature already does that, and the hints here are for mypy only.
    _skip_type_hint_validation = True

    def __init__(self) -> None:
        self._model: BaseAlgorithm | None = None

    def load_context(self, context: PythonModelContext) -> None:
        """Load the Conveyor model from the ``model`` artifact."""
        from conveyor.train.algorithms import BaseAlgorithm

        self._model = BaseAlgorithm.load(Path(context.artifacts[MODEL_ARTIFACT]))

    @property
    def model(self) -> BaseAlgorithm:
        """The loaded Conveyor model.

        Raises:
            RegistryError: ``load_context`` has not run.
        """
        if self._model is None:
            from conveyor.errors import RegistryError

            raise RegistryError("the pyfunc model is not loaded; use mlflow.pyfunc.load_model")
        return self._model

    def predict(
        self,
        context: PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Predictions for the rows of ``model_input`` (see the class docstring)."""
        return predictions(self.model, model_input)
