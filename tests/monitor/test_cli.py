"""`conveyor monitor drift` on a real project: prediction log, registry, stores and reports."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from conveyor.cli import app
from conveyor.cli._console import console, err_console

# MLflow's SQL store still uses SQLAlchemy's deprecated ``noload`` strategy; not Conveyor's.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
)

Invoke = Callable[..., Result]
START = datetime(2026, 3, 1, tzinfo=UTC)


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


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def log_predictions(project: Path, x: np.ndarray, start: datetime, version: int = 1) -> None:
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


def test_the_newest_window_against_the_one_before(project: Path) -> None:
    rng = np.random.default_rng(0)
    log_predictions(project, rng.normal(0, 1, 600), START)
    log_predictions(project, rng.normal(1.5, 1, 300), START + timedelta(hours=1))

    first = invoke("monitor", "drift", "--reference", "previous", "--window", "300")

    assert first.exit_code == 0, first.output
    assert "300 newest predictions against the 300 predictions before" in first.output
    assert "drift detected" in first.output
    reports = project / "reports"
    (json_path,) = reports.glob("drift-*.json")
    data = json.loads(json_path.read_text())
    assert {c["name"] for c in data["columns"]} == {"in_x", "in_colour", "out_prediction"}
    assert set(data["drifted_columns"]) >= {"in_x", "out_prediction"}
    assert data["current_rows"] == 300  # shadow rows are not served traffic
    assert "Drift over time" not in json_path.with_suffix(".html").read_text()

    second = invoke("monitor", "drift", "--reference", "previous", "-w", "300", "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.output)["drifted"] is True
    assert len(list(reports.glob("drift-*.html"))) == 2
    newest = sorted(reports.glob("drift-*.html"))[-1]
    assert "Drift over time" in newest.read_text()


def test_a_log_of_one_window_has_nothing_before_it(project: Path) -> None:
    log_predictions(project, np.zeros(100), START)
    result = CliRunner().invoke(app, ["monitor", "drift", "--reference", "previous"])
    assert result.exit_code == 1
    assert "holds only 100 predictions" in result.output


def test_no_log_says_how_to_get_one(project: Path) -> None:
    result = CliRunner().invoke(app, ["monitor", "drift", "--reference", "previous"])
    assert result.exit_code == 1
    assert "no prediction has been logged" in result.output


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


def test_the_newest_window_against_the_champions_training_data(
    project: Path, tracking: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.registry import ModelRegistry
    from conveyor.session import Session

    uri, (client, model_uri, run_id) = tracking
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    rng = np.random.default_rng(1)
    log_predictions(project, rng.normal(0, 1, 500), START)
    missing = CliRunner().invoke(app, ["monitor", "drift"])
    assert missing.exit_code == 1
    assert "has no champion to compare with" in missing.output

    training = pa.table(
        {
            "x": rng.normal(0, 1, 2000),
            "colour": rng.choice(["warm", "cold"], 2000).tolist(),
            "target": rng.integers(0, 2, 2000),
        }
    )
    pq.write_table(training, project / "train.parquet")
    with Session.open(project) as session:
        ref = session.artifacts.put_file(project / "train.parquet")
        session.store.add_dataset_version(
            id="v-train",
            name="p/validated",
            sha256=ref.digest,
            row_count=2000,
            schema={"x": "DOUBLE", "colour": "VARCHAR", "target": "BIGINT"},
            source={},
        )
        registry = ModelRegistry(client, session.require_spec().spec.name)
        version = registry.register(
            model_uri=model_uri, run_id=run_id, tags={"conveyor.dataset_version": "v-train"}
        ).version
        registry.promote(version, reason="first", actor="test", store=session.store)

    result = invoke("monitor", "drift", "--window", "400", "--html", "out/drift.html")

    assert result.exit_code == 0, result.output
    assert "against the training data of version 1 (dataset version v-train)" in result.output
    assert "no dataset drift" in result.output
    report = json.loads(next((project / "reports").glob("drift-*.json")).read_text())
    assert [c["name"] for c in report["columns"]] == ["x", "colour"]
    assert report["columns"][0]["current_name"] == "in_x"
    assert report["skipped"] == {
        "target": "not in the current data (looked for 'in_target' or 'target')"
    }
    assert (project / "out" / "drift.html").is_file()
