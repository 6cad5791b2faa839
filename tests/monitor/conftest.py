"""Fixtures of the monitoring tests: a project folder, its prediction log, a registered model."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conveyor.cli._console import console, err_console


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CONVEYOR_DB_URL", "CONVEYOR_ARTIFACTS_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    for each in (console, err_console):
        monkeypatch.setattr(each, "width", 200)
    name = f"drift-{secrets.token_hex(3)}"
    (tmp_path / "conveyor.yaml").write_text(f"name: {name}\n", encoding="utf-8")
    return tmp_path


def _log_predictions(project: Path, x: np.ndarray, start: datetime, version: int = 1) -> None:
    """Write rows to the project's prediction log as the server does (shadow rows too)."""
    n = len(x)
    day = start.strftime("%Y-%m-%d")
    folder = project / ".conveyor" / "artifacts" / "predictions" / f"date={day}"
    folder = folder / f"model_version={version}"
    folder.mkdir(parents=True, exist_ok=True)
    times = [start + timedelta(seconds=i) for i in range(n)]
    table = pa.table(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "row": pa.array(np.zeros(n, dtype=np.int32)),
            "timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
            "model_name": ["m"] * n,
            "model_version": pa.array(np.full(n, version, dtype=np.int64)),
            "latency_ms": np.ones(n),
            "shadow": pa.array(np.zeros(n, dtype=bool)),
            "in_x": x,
            "in_colour": np.where(x > 0, "warm", "cold").tolist(),
            "out_prediction": (x > 0.5).astype(np.int64),
        }
    )
    shadow = table.set_column(6, "shadow", pa.array(np.ones(n, dtype=bool)))
    shadow = shadow.set_column(7, "in_x", pa.array(np.full(n, 1e6)))
    pq.write_table(table, folder / f"part-w0-{start:%H%M%S}.parquet")
    pq.write_table(shadow, folder / f"part-w1-{start:%H%M%S}.parquet")


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """One MLflow database with a small model logged once, for registering versions."""
    import mlflow
    from sklearn.datasets import load_iris

    from conveyor.registry import connect, ensure_experiment
    from conveyor.spec._metrics import Task
    from conveyor.train.algorithms import SklearnAlgorithm

    before = mlflow.get_tracking_uri()
    root = tmp_path_factory.mktemp("tracking")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = connect(uri)
    experiment = ensure_experiment(client, "drift", artifact_location=str(root / "artifacts"))
    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = ["x", "b", "c", "d"]
    folder = root / "model"
    SklearnAlgorithm(
        "sklearn.tree.DecisionTreeClassifier",
        task=Task.multiclass_classification,
        feature_schema=dict.fromkeys(X.columns, "numeric"),
    ).fit(X, y).save(folder)
    with mlflow.start_run(experiment_id=experiment) as active:
        from conveyor.registry import log_conveyor_model

        info = log_conveyor_model(folder, X_example=X)
    yield uri, (client, info.model_uri, active.info.run_id)
    mlflow.set_tracking_uri(before)
    mlflow.set_registry_uri(before)


def _register_champion(project: Path, tracking: tuple[str, Any], training: pa.Table) -> int:
    """Store ``training`` as dataset version ``v-train`` and register the champion on it."""
    from conveyor.registry import ModelRegistry
    from conveyor.session import Session

    _, (client, model_uri, run_id) = tracking
    pq.write_table(training, project / "train.parquet")
    with Session.open(project) as session:
        ref = session.artifacts.put_file(project / "train.parquet")
        session.store.add_dataset_version(
            id="v-train",
            name="p/validated",
            sha256=ref.digest,
            row_count=training.num_rows,
            schema={name: str(training.schema.field(name).type) for name in training.column_names},
            source={},
        )
        registry = ModelRegistry(client, session.require_spec().spec.name)
        version = registry.register(
            model_uri=model_uri, run_id=run_id, tags={"conveyor.dataset_version": "v-train"}
        ).version
        registry.promote(version, reason="first", actor="test", store=session.store)
    return version


LogPredictions = Callable[..., None]
RegisterChampion = Callable[[Path, tuple[str, Any], pa.Table], int]


@pytest.fixture
def log_predictions() -> LogPredictions:
    """``log(project, x, start, version=1)``: rows of feature ``x`` in the prediction log."""
    return _log_predictions


@pytest.fixture
def register_champion() -> RegisterChampion:
    """``register(project, tracking, training)``: the champion, trained on ``training``."""
    return _register_champion
