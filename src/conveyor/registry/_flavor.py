"""Logging a Conveyor model folder to the active MLflow run as a pyfunc model."""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Final

from conveyor.errors import RegistryError

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.models.model import ModelInfo

__all__ = ["log_conveyor_model"]

INPUT_EXAMPLE_ROWS: Final = 5
_DISTRIBUTIONS: Final = {"scikit-learn", "numpy", "pandas", "lightgbm", "xgboost", "torch"}


def log_conveyor_model(
    model_dir: Path,
    *,
    X_example: pd.DataFrame,
    onnx: bytes | None = None,
    name: str = "model",
) -> ModelInfo:
    """Log the Conveyor model in ``model_dir`` to the active MLflow run, as a pyfunc model.

    The logged model holds the folder as its ``model`` artifact (and the ONNX export as
    ``onnx`` when given), a signature inferred from ``X_example`` and the model's answer to
    it, and the first rows of ``X_example`` as input example. Its pip requirements are pinned
    to the versions installed here (rather than inferred, which would load the model in a
    subprocess). Load it back with ``mlflow.pyfunc.load_model(info.model_uri)``.

    Args:
        model_dir: A folder written by ``BaseAlgorithm.save``.
        X_example: Feature rows the model accepts (a few suffice).
        onnx: The model's verified ONNX export, if any.
        name: The logged model's name within the run.

    Raises:
        RegistryError: there is no active MLflow run, or the folder holds no Conveyor model.
        TrackingError: the tracking server is unreachable.
    """
    import mlflow
    from mlflow.models import infer_signature

    from conveyor.registry._client import mlflow_errors
    from conveyor.registry._pyfunc import (
        MODEL_ARTIFACT,
        ONNX_ARTIFACT,
        ConveyorPythonModel,
        predictions,
    )
    from conveyor.train.algorithms import BaseAlgorithm

    # mlflow.pyfunc is used only after _pyfunc imported it (without MLflow's import warning).
    if mlflow.active_run() is None:
        raise RegistryError(
            "log_conveyor_model needs an active MLflow run; call it inside mlflow.start_run()"
        )
    model_dir = Path(model_dir)
    model = BaseAlgorithm.load(model_dir)
    example = X_example.head(INPUT_EXAMPLE_ROWS)
    with warnings.catch_warnings():
        # MLflow's hint that integer columns cannot hold missing values: true, and nothing the
        # caller can act on here (MLflow refuses int64 data for a double column). Under
        # warnings-as-errors it would silently turn the signature into "any".
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = infer_signature(X_example, predictions(model, X_example))
    with tempfile.TemporaryDirectory(prefix="conveyor-onnx-") as tmp:
        artifacts = {MODEL_ARTIFACT: str(model_dir)}
        if onnx is not None:
            onnx_path = Path(tmp) / "model.onnx"
            onnx_path.write_bytes(onnx)
            artifacts[ONNX_ARTIFACT] = str(onnx_path)
        with (
            mlflow_errors(f"cannot log the model in {model_dir} to MLflow"),
            warnings.catch_warnings(),
        ):
            # MLflow compares the example's column index with a range(), which pandas 3
            # deprecates; it is MLflow's to fix and says nothing to Conveyor's users.
            warnings.filterwarnings(
                "ignore", message="Operation with range is deprecated", category=DeprecationWarning
            )
            # MLflow warns that an object python_model is cloudpickled; ConveyorPythonModel
            # holds no state (the model is an artifact folder), so the warning is noise.
            pyfunc_logger = logging.getLogger("mlflow.pyfunc")
            level = pyfunc_logger.level
            pyfunc_logger.setLevel(logging.ERROR)
            try:
                info: ModelInfo = mlflow.pyfunc.log_model(
                    name=name,
                    python_model=ConveyorPythonModel(),
                    artifacts=artifacts,
                    signature=signature,
                    input_example=example,
                    pip_requirements=_requirements(model_dir),
                )
            finally:
                pyfunc_logger.setLevel(level)
    return info


def _requirements(model_dir: Path) -> list[str]:
    """Pins for what loading the model needs: Conveyor, MLflow and the model's libraries."""
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    pins = {
        name: version
        for name, version in dict(manifest.get("versions") or {}).items()
        if name in _DISTRIBUTIONS and version
    }
    for name in ("conveyor-ml", "mlflow", "cloudpickle"):
        try:
            pins[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return [f"{name}=={version}" for name, version in sorted(pins.items())]
