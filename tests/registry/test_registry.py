"""Registering, promoting and rolling back model versions on a real MLflow registry."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conveyor.errors import ModelVersionNotFoundError, RegistryError, TrackingError
from conveyor.registry import ModelRegistry, connect
from conveyor.store import MetadataStore
from conveyor.train.algorithms import BaseAlgorithm

from .conftest import LogModel, TrainedModel


def register(registry: ModelRegistry, log_model: LogModel, count: int, **tags: str) -> list[int]:
    numbers = []
    for _ in range(count):
        run_id, model_uri = log_model()
        info = registry.register(
            model_uri=model_uri,
            run_id=run_id,
            tags={"conveyor.metric.accuracy": "0.93", **tags},
            description="trained by a test",
        )
        numbers.append(info.version)
    return numbers


@pytest.fixture
def registry(client: Any, model_name: str) -> ModelRegistry:
    return ModelRegistry(client, model_name)


def test_register_creates_the_model_and_numbers_versions(
    registry: ModelRegistry, log_model: LogModel
) -> None:
    assert registry.versions() == []
    assert register(registry, log_model, 2) == [1, 2]

    versions = registry.versions()
    assert [v.version for v in versions] == [2, 1]
    newest = versions[0]
    assert newest.name == registry.name
    assert newest.run_id is not None
    assert newest.source.startswith("models:/")
    assert newest.aliases == ()
    assert newest.tags["conveyor.metric.accuracy"] == "0.93"
    assert newest.metrics == {"accuracy": 0.93}
    assert newest.description == "trained by a test"
    assert newest.created_at.tzinfo is not None
    assert registry.get("latest").version == 2


def test_promote_challenger_and_rollback_move_aliases_and_write_the_audit_log(
    registry: ModelRegistry, log_model: LogModel, store: MetadataStore
) -> None:
    register(registry, log_model, 3)
    who = {"actor": "alice", "store": store}

    first = registry.promote("1", reason="first model", **who)
    assert first.aliases == ("champion",)
    assert first.tags["conveyor.previous_champion"] == ""

    challenger = registry.set_challenger(2, reason="try it", **who)
    assert challenger.aliases == ("challenger",)
    assert registry.alias("challenger") == challenger

    second = registry.promote("@challenger", reason="wins on AUC", **who)
    assert second.version == 2
    assert second.aliases == ("champion",)  # no longer challenger
    assert second.tags["conveyor.previous_champion"] == "1"
    assert registry.alias("challenger") is None
    assert registry.get(1).aliases == ()

    registry.promote(3, reason="even better", **who)
    back = registry.rollback(reason="latency regression", **who)
    assert back.version == 2
    assert registry.get("champion").version == 2
    again = registry.rollback(reason="still bad", **who)
    assert again.version == 1

    name = registry.name
    entries = [(e.action, e.target, e.reason, e.details) for e in store.list_audit()][::-1]
    assert entries == [
        ("promote", f"model:{name}/1", "first model", {"previous": None}),
        ("challenger", f"model:{name}/2", "try it", {"previous": None}),
        ("promote", f"model:{name}/2", "wins on AUC", {"previous": 1}),
        ("promote", f"model:{name}/3", "even better", {"previous": 2}),
        ("rollback", f"model:{name}/2", "latency regression", {"from": 3, "to": 2}),
        ("rollback", f"model:{name}/1", "still bad", {"from": 2, "to": 1}),
    ]
    assert {e.actor for e in store.list_audit()} == {"alice"}


def test_rollback_without_a_previous_champion_is_refused(
    registry: ModelRegistry, log_model: LogModel, store: MetadataStore
) -> None:
    register(registry, log_model, 1)
    with pytest.raises(RegistryError, match="no champion"):
        registry.rollback(reason="oops", actor="bob", store=store)
    registry.promote(1, reason="first", actor="bob", store=store)
    with pytest.raises(RegistryError, match=r"version 1 .*nothing to roll back to"):
        registry.rollback(reason="oops", actor="bob", store=store)
    assert registry.get("champion").version == 1
    assert [e.action for e in store.list_audit()] == ["promote"]


def test_rollback_falls_back_to_the_audit_log_without_the_tag(
    registry: ModelRegistry, log_model: LogModel, store: MetadataStore, client: Any
) -> None:
    register(registry, log_model, 2)
    registry.promote(1, reason="first", actor="bob", store=store)
    registry.promote(2, reason="second", actor="bob", store=store)
    client.delete_model_version_tag(registry.name, "2", "conveyor.previous_champion")

    assert registry.rollback(reason="back", actor="bob", store=store).version == 1


def test_changes_need_a_reason_and_sensible_targets(
    registry: ModelRegistry, log_model: LogModel, store: MetadataStore
) -> None:
    register(registry, log_model, 2)
    with pytest.raises(RegistryError, match="reason is required"):
        registry.promote(1, reason="  ", actor="bob", store=store)
    registry.promote(1, reason="first", actor="bob", store=store)
    with pytest.raises(RegistryError, match="already is champion"):
        registry.promote("champion", reason="again", actor="bob", store=store)
    with pytest.raises(RegistryError, match="is the champion"):
        registry.set_challenger(1, reason="no", actor="bob", store=store)


def test_unknown_refs_list_the_versions_and_aliases_that_exist(
    registry: ModelRegistry, log_model: LogModel, store: MetadataStore
) -> None:
    with pytest.raises(ModelVersionNotFoundError, match="no model registered yet"):
        registry.get("champion")
    register(registry, log_model, 2)
    registry.promote(2, reason="first", actor="bob", store=store)

    with pytest.raises(ModelVersionNotFoundError) as caught:
        registry.get(7)
    assert "no version 7" in str(caught.value)
    assert "versions: 2, 1" in str(caught.value)
    assert "champion → 2" in str(caught.value)
    with pytest.raises(ModelVersionNotFoundError, match="no version or alias 'staging'"):
        registry.get("staging")
    assert registry.alias("challenger") is None


def test_download_gives_the_conveyor_model_folder(
    registry: ModelRegistry, log_model: LogModel, trained: TrainedModel, tmp_path: Path
) -> None:
    register(registry, log_model, 1)
    folder = registry.download(1, tmp_path / "downloaded")

    assert (folder / "manifest.json").is_file()
    model = BaseAlgorithm.load(folder)
    np.testing.assert_array_equal(model.predict(trained.X), trained.model.predict(trained.X))
    np.testing.assert_allclose(
        model.predict_proba(trained.X), trained.model.predict_proba(trained.X)
    )
    with pytest.raises(RegistryError, match="not empty"):
        registry.download(1, folder)


def test_connect_to_a_server_nobody_listens_on_fails_fast(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow

    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.setenv(name, "1")  # so that monkeypatch undoes the defaults connect() sets
        monkeypatch.delenv(name)
    before = mlflow.get_tracking_uri()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"

    start = time.perf_counter()
    with pytest.raises(TrackingError, match=f"cannot reach the MLflow tracking server at {url}"):
        connect(url)
    assert time.perf_counter() - start < 10
    assert mlflow.get_tracking_uri() == before  # a failed connect changes nothing


def test_connect_creates_the_folder_of_a_sqlite_database(client: Any, tracking_uri: str) -> None:
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    assert database.parent.name == "tracking"  # did not exist before connect()
    assert database.parent.is_dir()
    assert client.tracking_uri == tracking_uri
