"""The server's deployment follower: plans from deployment records, and the store's grace period."""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conveyor.serving._follower import DeploymentFollower
from conveyor.serving._loading import ResolvedModel
from conveyor.store import DeploymentEventInput, MetadataStore


def fake_resolve(uri: str) -> ResolvedModel:
    name, _, version = uri.removeprefix("models:/").partition("/")
    number = int(version) if version.isdigit() else 1
    return ResolvedModel(name, number, (), uri, {}, Path("/nonexistent"), None)


@pytest.fixture
def unique() -> str:
    return f"p{secrets.token_hex(6)}"


@pytest.fixture
def store(store_url: str) -> Any:
    with MetadataStore(store_url) as opened:
        yield opened


def test_plans_follow_the_deployment_record(
    store: MetadataStore, store_url: str, unique: str
) -> None:
    follower = DeploymentFollower(store_url, unique, fake_resolve, "host:1")
    plan = follower.initial_plan()  # no deployment yet: the champion alias
    assert [m.source for m in plan.models] == [f"models:/{unique}@champion"]
    assert follower.poll() is None

    record = store.create_deployment(
        project=unique,
        champion_version=3,
        challenger_version=4,
        policy="canary",
        config={"sticky_header": "X-User"},
        weights={3: 95.0, 4: 5.0},
        state="rolling",
        actor="t",
    )
    plan = follower.poll()
    assert plan is not None and [m.version for m in plan.models] == [3, 4]
    assert plan.traffic_plans()[unique].weights == {3: 95.0, 4: 5.0}
    assert plan.sticky_header == "X-User" and follower.poll() is None

    record = store.update_deployment(
        record.id,
        expected_version=record.version,
        weights={3: 0.0, 4: 100.0},
        event=DeploymentEventInput(kind="weights", actor="t"),
    )
    plan = follower.poll()
    assert plan is not None and [m.version for m in plan.models] == [3, 4]  # 3 stays warm
    store.update_deployment(
        record.id,
        expected_version=record.version,
        state="promoted",
        event=DeploymentEventInput(kind="promoted", actor="t"),
    )
    plan = follower.poll()
    assert plan is not None and [m.version for m in plan.models] == [4]
    assert plan.traffic_plans()[unique].weights == {4: 100.0}
    assert "v4 100%" in plan.describe()


def test_an_unreachable_store_turns_readiness_off_after_the_grace_period(
    store_url: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    follower = DeploymentFollower(
        store_url, unique, fake_resolve, "host:1", poll_seconds=0.05, grace_seconds=0.3
    )
    follower.initial_plan()
    failing = threading.Event()
    real_poll = follower.poll

    def poll() -> Any:
        if failing.is_set():
            raise ConnectionError("connection refused")
        return real_poll()

    monkeypatch.setattr(follower, "poll", poll)
    calls: list[tuple[float, str | None]] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=follower.run,
        args=(stop, lambda plan: None, lambda why: calls.append((time.monotonic(), why))),
    )
    thread.start()
    try:
        failing.set()
        since = time.monotonic()
        deadline = since + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.02)
        assert calls and calls[0][0] - since >= 0.3  # not before the grace period
        assert "unreachable" in str(calls[0][1]) and "connection refused" in str(calls[0][1])
        failing.clear()
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [why for _, why in calls][1:] == [None]  # ready again
    finally:
        stop.set()
        thread.join(5)


def test_a_version_that_cannot_be_loaded_fails_the_deployment_and_gets_no_traffic(
    store: MetadataStore,
    store_url: str,
    unique: str,
    register_version: Any,
    serving_tracking_uri: str,
    tmp_path: Path,
) -> None:
    from functools import partial

    from conveyor.serving._loading import load_resolved, resolve_model

    good = register_version(unique)
    tampered = register_version(unique, tags={"conveyor.model_sha256": "0" * 64})
    follower = DeploymentFollower(
        store_url,
        unique,
        partial(resolve_model, tracking_uri=serving_tracking_uri, cache_dir=tmp_path / "cache"),
        "host:1",
        check=partial(load_resolved, runtime="native"),
    )
    record = store.create_deployment(
        project=unique,
        champion_version=good,
        challenger_version=tampered,
        policy="canary",
        weights={good: 90.0, tampered: 10.0},
        state="rolling",
        actor="t",
    )
    plan = follower.initial_plan()
    assert [m.version for m in plan.models] == [good]
    assert plan.traffic_plans()[unique].weights == {good: 100.0}
    failed = store.get_deployment(record.id)
    assert failed.state == "failed"
    (event,) = [e for e in store.list_deployment_events(record.id) if e.kind == "failed"]
    assert f"version {tampered} cannot be loaded" in event.reason
    assert "ModelChecksumError" in event.reason and event.actor == "replica host:1"
    assert follower.poll() is None  # nothing new since
