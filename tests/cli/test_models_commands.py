"""`conveyor models list|show|promote|rollback` and `conveyor lineage` on a real project."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import Tracking

from conveyor.store import MetadataStore

from .conftest import Invoke

# MLflow's SQL store still uses SQLAlchemy's deprecated ``noload`` strategy; not Conveyor's.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
)

Register = Callable[..., int]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracking: Tracking) -> str:
    """A project in the cwd with a unique name, tracking to the session's MLflow database."""
    name = f"proj-{secrets.token_hex(4)}"
    (tmp_path / "conveyor.yaml").write_text(f"name: {name}\n", encoding="utf-8")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.uri)
    return name


@pytest.fixture
def register(project: str, tracking: Tracking) -> Register:
    """``register(**tags) -> version``: log the model in a new MLflow run and register it."""
    from conveyor.registry import ModelRegistry

    def run(**tags: str) -> int:
        model_uri, run_id = tracking.log_model(roc_auc=0.91)
        registry = ModelRegistry(tracking.client, project)
        return registry.register(model_uri=model_uri, run_id=run_id, tags=tags).version

    return run


def project_store(tmp_path: Path) -> MetadataStore:
    return MetadataStore(f"sqlite:///{tmp_path / '.conveyor' / 'conveyor.db'}")


def test_list_on_an_empty_registry_says_how_to_get_a_model(invoke: Invoke, project: str) -> None:
    result = invoke("models", "list")
    assert result.exit_code == 0, result.output
    assert f"no model registered yet for project {project}; run `conveyor run`" in result.output
    assert json.loads(invoke("models", "list", "--json").output) == []


def test_list_shows_versions_aliases_metrics_and_gate(
    invoke: Invoke, register: Register, tmp_path: Path
) -> None:
    register(**{"conveyor.dataset_version": "validated-abc", "conveyor.metric.roc_auc": "0.912"})
    register(
        **{
            "conveyor.metric.roc_auc": "0.934",
            "conveyor.gate": json.dumps({"passed": True, "checks": []}),
            "conveyor.onnx_verified": "true",
        }
    )
    assert invoke("models", "promote", "1", "--reason", "first").exit_code == 0

    result = invoke("models", "list")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "roc_auc" in line]
    assert len(rows) == 2
    assert "roc_auc=0.934" in rows[0] and "passed" in rows[0] and "yes" in rows[0]
    assert "champion" in rows[1] and "validated-ab" in rows[1]

    listed = json.loads(invoke("models", "list", "--json").output)
    assert [(v["version"], v["aliases"]) for v in listed] == [(2, []), (1, ["champion"])]
    assert listed[0]["metrics"] == {"roc_auc": 0.934}


def test_show_prints_tags_metrics_and_lineage(
    invoke: Invoke, register: Register, project: str
) -> None:
    register(
        **{
            "conveyor.algorithm": "sklearn:sklearn.tree.DecisionTreeClassifier",
            "conveyor.metric.accuracy": "0.97",
            "conveyor.model_sha256": "f" * 64,
            "team": "fraud",
        }
    )
    result = invoke("models", "show", "1")
    assert result.exit_code == 0, result.output
    assert f"model {project} version 1" in result.output
    assert "sklearn:sklearn.tree.DecisionTreeClassifier" in result.output
    assert "accuracy" in result.output and "0.97" in result.output
    assert "f" * 64 in result.output
    assert "team" in result.output and "fraud" in result.output

    shown = json.loads(invoke("models", "show", "1", "--json").output)
    assert shown["version"] == 1
    assert shown["lineage"]["pipeline_run"] == "unknown"
    assert shown["lineage"]["mlflow_run"]["metrics"] == {"roc_auc": 0.91}


def test_promote_and_rollback_move_the_champion_and_are_audited(
    invoke: Invoke, register: Register, project: str, tmp_path: Path
) -> None:
    register()
    register()
    first = invoke("models", "promote", "1", "--reason", "baseline")
    assert first.exit_code == 0, first.output
    assert "version 1" in first.output and "champion" in first.output
    second = invoke("models", "promote", "2", "--reason", "better")
    assert "(was version 1)" in second.output

    back = invoke("models", "rollback", "--reason", "too slow")
    assert back.exit_code == 0, back.output
    assert "version 1" in back.output and "rolled back from version 2" in back.output
    listed = json.loads(invoke("models", "list", "--json").output)
    assert [(v["version"], v["aliases"]) for v in listed] == [(2, []), (1, ["champion"])]

    with project_store(tmp_path) as store:
        entries = store.list_audit()
    assert [(e.action, e.target, e.reason) for e in entries] == [
        ("rollback", f"model:{project}/1", "too slow"),
        ("promote", f"model:{project}/2", "better"),
        ("promote", f"model:{project}/1", "baseline"),
    ]

    again = invoke("models", "rollback", "--reason", "again")
    assert again.exit_code == 1
    assert "nothing to roll back to" in again.output


def test_promote_without_a_reason_is_a_usage_error(invoke: Invoke, register: Register) -> None:
    register()
    result = invoke("models", "promote", "1")
    assert result.exit_code == 2
    assert "--reason" in result.output
    assert json.loads(invoke("models", "list", "--json").output)[0]["aliases"] == []


def test_unknown_versions_are_one_line_errors(invoke: Invoke, register: Register) -> None:
    register()
    result = invoke("models", "show", "9")
    assert result.exit_code == 1
    assert "error:" in result.output and "no version '9'" in result.output
    assert "versions: 1" in result.output
    assert "Traceback" not in result.output


def test_lineage_prints_the_chain_as_a_tree(
    invoke: Invoke, register: Register, project: str, tmp_path: Path
) -> None:
    with project_store(tmp_path) as store:
        raw = store.add_dataset_version(
            id="raw-0001",
            name=f"{project}.raw",
            sha256="1" * 64,
            row_count=150,
            schema={},
            source={"sources": {"iris": {"type": "file", "path": "data/iris.csv"}}},
        )
        store.add_dataset_version(
            id="val-0001",
            name=f"{project}.validated",
            sha256="2" * 64,
            row_count=149,
            schema={},
            source={"validated_from": raw.id},
            parents=[raw.id],
        )
    register(**{"conveyor.dataset_version": "val-0001", "conveyor.metric.f1": "0.8"})
    invoke("models", "promote", "1", "--reason", "first")

    result = invoke("lineage", "champion")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    order = ["sources", "raw dataset", "validated dataset", "pipeline run", "mlflow run"]
    positions = [next(i for i, line in enumerate(lines) if part in line) for part in order]
    assert positions == sorted(positions)
    assert "data/iris.csv" in result.output
    assert "raw-0001" in result.output and "val-0001" in result.output
    assert "pipeline run unknown" in result.output
    assert "champion" in result.output and "f1=0.8" in result.output
    assert "none yet" in result.output

    chain = json.loads(invoke("lineage", "1", "--json").output)
    assert chain["raw_dataset"]["id"] == "raw-0001"
    assert chain["deployments"] == []
