"""Conveyor models logged as MLflow pyfunc models load and predict with MLflow's own loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conveyor.errors import RegistryError
from conveyor.registry import ConveyorPythonModel, log_conveyor_model

from .conftest import LogModel, TrainedModel


def test_pyfunc_load_model_predicts_labels_and_probabilities(
    log_model: LogModel, trained: TrainedModel
) -> None:
    import mlflow.pyfunc

    _, model_uri = log_model()
    loaded = mlflow.pyfunc.load_model(model_uri)
    out = loaded.predict(trained.X.head(20))

    classes = list(trained.model.classes_)
    assert list(out.columns) == ["prediction", *(f"proba_{c}" for c in classes)]
    assert out["prediction"].tolist() == trained.model.predict(trained.X.head(20)).tolist()
    np.testing.assert_allclose(
        out[[f"proba_{c}" for c in classes]].to_numpy(),
        trained.model.predict_proba(trained.X.head(20)),
    )


def test_logged_model_has_signature_example_and_pinned_requirements(log_model: LogModel) -> None:
    import mlflow.artifacts
    from mlflow.models import Model

    _, model_uri = log_model(onnx=b"not really onnx")
    local = Path(mlflow.artifacts.download_artifacts(model_uri))
    meta = Model.load(str(local))

    assert [c.name for c in meta.signature.inputs] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]
    assert "prediction" in [c.name for c in meta.signature.outputs]
    assert meta.saved_input_example_info is not None
    artifacts = meta.flavors["python_function"]["artifacts"]
    assert (local / artifacts["onnx"]["path"]).read_bytes() == b"not really onnx"
    requirements = (local / "requirements.txt").read_text()
    assert "mlflow==" in requirements
    assert "scikit-learn==" in requirements


def test_log_conveyor_model_needs_an_active_run(trained: TrainedModel) -> None:
    with pytest.raises(RegistryError, match="active MLflow run"):
        log_conveyor_model(trained.folder, X_example=trained.X)


def test_an_unloaded_pyfunc_model_says_how_to_load_it() -> None:
    with pytest.raises(RegistryError, match="load_model"):
        ConveyorPythonModel().predict(None, None)


def test_integer_columns_keep_a_real_signature(experiment_id: str, tmp_path: Path) -> None:
    import mlflow
    import mlflow.pyfunc
    import pandas as pd

    from conveyor.spec._metrics import Task
    from conveyor.train.algorithms import SklearnAlgorithm

    X = pd.DataFrame({"count": [1, 5, 2, 8, 3, 9, 4, 7], "size": [2, 1, 2, 1, 2, 1, 2, 1]})
    y = [0, 1, 0, 1, 0, 1, 0, 1]
    SklearnAlgorithm(
        "sklearn.tree.DecisionTreeClassifier",
        task=Task.binary_classification,
        feature_schema=dict.fromkeys(X.columns, "numeric"),
    ).fit(X, y).save(tmp_path / "model")
    with mlflow.start_run(experiment_id=experiment_id):
        info = log_conveyor_model(tmp_path / "model", X_example=X)

    assert [c.name for c in info.signature.inputs] == ["count", "size"]
    assert [c.name for c in info.signature.outputs] == ["prediction", "proba_0", "proba_1"]
    out = mlflow.pyfunc.load_model(info.model_uri).predict(X)
    assert out["prediction"].tolist() == y
