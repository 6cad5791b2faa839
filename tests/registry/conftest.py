"""A real MLflow (one SQLite tracking database for these tests) and real models to register."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conveyor.store import MetadataStore

# MLflow's SQL store still uses SQLAlchemy's deprecated ``noload`` strategy; not Conveyor's.
MLFLOW_WARNINGS = ("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            for spec in MLFLOW_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@dataclass(frozen=True)
class TrainedModel:
    """A small fitted classifier saved as a Conveyor model folder, and rows it predicts."""

    folder: Path
    X: Any
    model: Any


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQLite tracking database for these tests (MLflow migrates a new one slowly)."""
    import mlflow

    before = mlflow.get_tracking_uri()
    folder = tmp_path_factory.mktemp("mlflow")
    yield f"sqlite:///{folder / 'tracking' / 'mlflow.db'}"
    mlflow.set_tracking_uri(before)
    mlflow.set_registry_uri(before)


@pytest.fixture(scope="session")
def client(tracking_uri: str) -> Any:
    from conveyor.registry import connect

    return connect(tracking_uri)


@pytest.fixture(scope="session")
def experiment_id(client: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    from conveyor.registry import ensure_experiment

    artifacts = tmp_path_factory.mktemp("mlartifacts")
    return ensure_experiment(client, "registry-tests", artifact_location=str(artifacts))


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    from sklearn.datasets import load_iris

    from conveyor.spec._metrics import Task
    from conveyor.train.algorithms import SklearnAlgorithm

    frame = load_iris(as_frame=True)
    X = frame.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    y = frame.target.map(dict(enumerate(frame.target_names))).to_numpy()
    model = SklearnAlgorithm(
        "sklearn.linear_model.LogisticRegression",
        task=Task.multiclass_classification,
        feature_schema=dict.fromkeys(X.columns, "numeric"),
        params={"max_iter": 500},
    ).fit(X, y)
    folder = tmp_path_factory.mktemp("model") / "conveyor-model"
    model.save(folder)
    return TrainedModel(folder, X, model)


LogModel = Callable[..., tuple[str, str]]


@pytest.fixture(scope="session")
def log_model(experiment_id: str, trained: TrainedModel) -> LogModel:
    """``log_model(**params) -> (run_id, model_uri)``: a new MLflow run holding the model."""
    import mlflow

    from conveyor.registry import log_conveyor_model

    def log(onnx: bytes | None = None, **params: Any) -> tuple[str, str]:
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_params(params or {"C": 1.0})
            mlflow.log_metric("accuracy", 0.9)
            info = log_conveyor_model(trained.folder, X_example=trained.X, onnx=onnx)
        return run.info.run_id, info.model_uri

    return log


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    with MetadataStore(f"sqlite:///{tmp_path / 'store' / 'conveyor.db'}") as opened:
        yield opened


@pytest.fixture
def model_name() -> str:
    """A registered model name unique to the test (the tracking database is shared)."""
    return f"project-{secrets.token_hex(4)}"
