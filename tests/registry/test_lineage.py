"""Lineage of a model version: from its data sources to the version, unknown links included."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conveyor.registry import UNKNOWN, ModelRegistry, lineage
from conveyor.store import MetadataStore

from .conftest import LogModel


@pytest.fixture
def registry(client: Any, model_name: str) -> ModelRegistry:
    return ModelRegistry(client, model_name)


def test_lineage_follows_every_link(
    registry: ModelRegistry, log_model: LogModel, store: MetadataStore
) -> None:
    run = store.create_run(
        project=registry.name, spec_hash="cafe", actor="alice", hostname="laptop", pid=1
    )
    raw = store.add_dataset_version(
        id="raw-1234",
        name=f"{registry.name}.raw",
        sha256="a" * 64,
        row_count=150,
        schema={"x": "DOUBLE"},
        source={"sources": {"iris": {"type": "file", "path": "data/iris.csv"}}, "query": None},
        run_id=run.id,
    )
    validated = store.add_dataset_version(
        id="val-5678",
        name=f"{registry.name}.validated",
        sha256="b" * 64,
        row_count=148,
        schema={"x": "DOUBLE"},
        source={"validated_from": raw.id},
        parents=[raw.id],
        run_id=run.id,
        artifacts={"report_html": "c" * 64},
        stats={"quarantined_rows": 2},
    )
    run_id, model_uri = log_model()
    registry.register(
        model_uri=model_uri,
        run_id=run_id,
        tags={
            "conveyor.dataset_version": validated.id,
            "conveyor.pipeline_run": run.id,
            "conveyor.metric.accuracy": "0.95",
            "conveyor.algorithm": "sklearn:sklearn.linear_model.LogisticRegression",
        },
    )
    registry.promote(1, reason="first", actor="alice", store=store)

    chain = lineage(registry, "champion", store=store)

    assert list(chain) == [
        "sources",
        "raw_dataset",
        "validated_dataset",
        "pipeline_run",
        "mlflow_run",
        "model_version",
        "deployments",
    ]
    assert chain["sources"] == [{"name": "iris", "type": "file", "path": "data/iris.csv"}]
    assert chain["raw_dataset"]["id"] == "raw-1234"  # found through the validated version
    assert chain["raw_dataset"]["rows"] == 150
    assert chain["validated_dataset"]["validation_report"] == "c" * 64
    assert chain["validated_dataset"]["quarantined_rows"] == 2
    assert chain["pipeline_run"]["id"] == run.id
    assert chain["pipeline_run"]["status"] == "running"
    assert chain["mlflow_run"]["id"] == run_id
    assert chain["mlflow_run"]["experiment"] == "registry-tests"
    assert chain["mlflow_run"]["metrics"] == {"accuracy": 0.9}
    assert chain["mlflow_run"]["link"] is None  # local tracking: nothing to link to
    assert chain["model_version"]["aliases"] == ["champion"]
    assert chain["model_version"]["metrics"] == {"accuracy": 0.95}
    assert chain["deployments"] == []
    json.dumps(chain)  # JSON-ready

    store.create_deployment(
        project=registry.name,
        champion_version=1,
        challenger_version=None,
        policy="direct",
        weights={1: 100.0},
        state="promoted",
        actor="alice",
        reason="first live version",
    )
    (deployment,) = lineage(registry, 1, store=store)["deployments"]
    assert (deployment["policy"], deployment["state"], deployment["role"]) == (
        "direct",
        "promoted",
        "champion",
    )
    assert deployment["weights"] == {"1": 100.0} and deployment["reason"] == "first live version"


def test_a_version_registered_outside_conveyor_has_unknown_links(
    registry: ModelRegistry, log_model: LogModel, store: MetadataStore
) -> None:
    run_id, model_uri = log_model()
    registry.register(model_uri=model_uri, run_id=run_id, tags={})
    registry.register(
        model_uri=model_uri,
        run_id=run_id,
        tags={"conveyor.dataset_version": "gone-0000", "conveyor.pipeline_run": "feedbeef"},
    )

    bare = lineage(registry, 1, store=store)
    assert bare["sources"] == UNKNOWN
    assert bare["raw_dataset"] == UNKNOWN
    assert bare["validated_dataset"] == UNKNOWN
    assert bare["pipeline_run"] == UNKNOWN
    assert bare["mlflow_run"]["id"] == run_id
    assert bare["model_version"]["algorithm"] == UNKNOWN

    dangling = lineage(registry, 2, store=store)
    assert dangling["validated_dataset"] == {"id": "gone-0000", "found": False}
    assert dangling["pipeline_run"] == {"id": "feedbeef", "found": False}
