"""bench/serving.py's model: trained by Conveyor, registered in a local MLflow, files for peers.

One 200-tree LightGBM binary classifier on 20 numeric features of synthetic data (fixed seed),
trained with Conveyor's adapter so that Conveyor (and MLflow's pyfunc) can serve it, logged
with its verified ONNX export, registered with the tags Conveyor's pipeline sets, and promoted
to ``champion``. The peers that do not read MLflow's registry get the same model as files:
the ONNX export (``model.onnx``) and LightGBM's own model text (``model.txt``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_NAME = "bench-serving"
FEATURES = [f"f{i:02d}" for i in range(20)]
TRAIN_ROWS = 20_000
SEED = 42


@dataclass(frozen=True)
class BenchModel:
    """Where the model is and what requests it gets."""

    tracking_uri: str
    name: str
    version: int
    onnx_path: Path | None
    lgbm_path: Path
    features: list[str]
    rows: list[dict[str, float]]  # request rows (holdout), the same for every server
    proba: list[float]  # the native model's P(class 1) for ``rows``
    onnx_verified: bool
    onnx_reason: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@champion"

    def peer_env(self) -> dict[str, str]:
        """What the peer scripts in bench/serving_peers/ read to find the model."""
        env = {
            "BENCH_LGBM_PATH": str(self.lgbm_path),
            "BENCH_FEATURES": json.dumps(self.features),
        }
        if self.onnx_path is not None:
            env["BENCH_ONNX_PATH"] = str(self.onnx_path)
        return env


def synthetic(rows: int, seed: int) -> tuple[Any, Any]:
    """Features (a DataFrame) and a 0/1 target with some signal and some noise."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, len(FEATURES)))
    logit = (
        X[:, 0] * 1.5
        - X[:, 1]
        + 0.8 * X[:, 2] * X[:, 3]
        + np.sin(2 * X[:, 4])
        + 0.5 * np.abs(X[:, 5])
        - 0.3 * X[:, 6] ** 2
        + 0.4 * X[:, 7:12].sum(axis=1)
    )
    y = (logit + rng.logistic(size=rows) > 0).astype(np.int64)
    return pd.DataFrame(X, columns=FEATURES), y


def build(workdir: Path, *, request_rows: int = 256) -> BenchModel:
    """Train, export, log, register and promote the model under ``workdir``."""
    import mlflow

    from conveyor.registry import ModelRegistry, connect, ensure_experiment, log_conveyor_model
    from conveyor.spec._metrics import Task
    from conveyor.store import MetadataStore
    from conveyor.train._archive import pack_model
    from conveyor.train.algorithms import LightGBMAlgorithm
    from conveyor.train.onnx import export_onnx

    workdir.mkdir(parents=True, exist_ok=True)
    X, y = synthetic(TRAIN_ROWS + request_rows, SEED)
    X_train, y_train = X.iloc[:TRAIN_ROWS], y[:TRAIN_ROWS]
    X_hold = X.iloc[TRAIN_ROWS:].round(6).reset_index(drop=True)
    model = LightGBMAlgorithm(
        task=Task.binary_classification,
        feature_schema=dict.fromkeys(FEATURES, "numeric"),
        params={"n_estimators": 200},
        seed=SEED,
        n_jobs=1,
    )
    model.fit(X_train, y_train)
    folder = workdir / "model"
    model.save(folder)
    model_sha = hashlib.sha256(pack_model(folder)).hexdigest()
    export = export_onnx(model, X_hold)

    onnx_path = None
    if export.data is not None and export.verified:
        onnx_path = workdir / "model.onnx"
        onnx_path.write_bytes(export.data)
    lgbm_path = workdir / "model.txt"
    model._fitted()[-1].booster_.save_model(str(lgbm_path))

    tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    client = connect(tracking_uri)
    experiment = ensure_experiment(
        client, MODEL_NAME, artifact_location=str(workdir / "mlartifacts")
    )
    with mlflow.start_run(experiment_id=experiment) as run:
        info = log_conveyor_model(
            folder, X_example=X_hold, onnx=export.data if export.verified else None
        )
        mlflow.set_tags(export.tags() | {"conveyor.model_sha256": model_sha})
    tags = {
        "conveyor.project": MODEL_NAME,
        "conveyor.model_sha256": model_sha,
        "conveyor.algorithm": "lightgbm",
        "conveyor.task": str(Task.binary_classification),
        **export.tags(),
    }
    if onnx_path is not None and export.data is not None:
        tags["conveyor.onnx_sha256"] = hashlib.sha256(export.data).hexdigest()
    registry = ModelRegistry(client, MODEL_NAME)
    version = registry.register(model_uri=info.model_uri, run_id=run.info.run_id, tags=tags)
    with MetadataStore(f"sqlite:///{workdir / 'conveyor.db'}") as store:
        registry.promote(
            version.version, reason="serving benchmark", actor="bench/serving.py", store=store
        )
    proba = model.predict_proba(X_hold)[:, 1]
    return BenchModel(
        tracking_uri=tracking_uri,
        name=MODEL_NAME,
        version=version.version,
        onnx_path=onnx_path,
        lgbm_path=lgbm_path,
        features=list(FEATURES),
        rows=[{k: float(v) for k, v in row.items()} for row in X_hold.to_dict("records")],
        proba=[float(p) for p in proba],
        onnx_verified=export.verified,
        onnx_reason=export.reason,
    )
