"""Deployments and their history, on every backend (the PostgreSQL database is shared: every
test names its project with the ``unique`` fixture)."""

from __future__ import annotations

import dataclasses
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from conveyor.errors import ConflictError, RecordNotFoundError
from conveyor.store import (
    DEPLOYMENT_CHANNEL,
    DeploymentEventInput,
    DeploymentPolicy,
    DeploymentRecord,
    DeploymentStamp,
    DeploymentState,
    MetadataStore,
)

CANARY = {"policy": "canary", "steps": [5, 25, 50, 100], "guardrails": {"error_rate": 0.01}}


def _deploy(store: MetadataStore, project: str, /, **overrides: Any) -> DeploymentRecord:
    fields: dict[str, Any] = {
        "project": project,
        "champion_version": 3,
        "challenger_version": 4,
        "policy": DeploymentPolicy.CANARY,
        "config": CANARY,
        "weights": {3: 100.0, 4: 0.0},
        "actor": "alice",
        "reason": "new model passed its gates",
    }
    fields.update(overrides)
    return store.create_deployment(**fields)


def _event(kind: str = "weights", **overrides: Any) -> DeploymentEventInput:
    fields: dict[str, Any] = {"kind": kind, "actor": "controller", "reason": "step held"}
    fields.update(overrides)
    return DeploymentEventInput(**fields)


def test_create_deployment_records_everything_and_a_created_event(
    store: MetadataStore, unique: str
) -> None:
    before = datetime.now(UTC)
    deployment = _deploy(store, unique, metrics={"auc": 0.91})

    assert len(deployment.id) == 32 and int(deployment.id, 16) >= 0
    expected = {
        "project": unique,
        "champion_version": 3,
        "challenger_version": 4,
        "policy": DeploymentPolicy.CANARY,
        "config": CANARY,
        "weights": {3: 100.0, 4: 0.0},
        "shadow_version": None,
        "shadow_rate": 0.0,
        "state": DeploymentState.PENDING,
        "step": 0,
        "step_started_at": None,
        "actor": "alice",
        "reason": "new model passed its gates",
        "version": 1,
    }
    assert {key: getattr(deployment, key) for key in expected} == expected
    assert deployment.created_at.tzinfo is UTC
    assert before <= deployment.created_at == deployment.updated_at <= datetime.now(UTC)
    assert store.get_deployment(deployment.id) == deployment
    assert store.get_deployment(deployment.id[:8].upper()) == deployment

    [created] = store.list_deployment_events(deployment.id)
    assert (created.kind, created.actor) == ("created", "alice")
    assert created.reason == "new model passed its gates"
    assert (created.from_state, created.to_state) == (None, DeploymentState.PENDING)
    assert created.weights == {3: 100.0, 4: 0.0} and created.metrics == {"auc": 0.91}
    assert created.deployment_id == deployment.id and created.at == deployment.created_at


def test_a_project_has_at_most_one_active_deployment(store: MetadataStore, unique: str) -> None:
    first = _deploy(store, unique)
    other_project = _deploy(store, f"{unique}-other")  # other projects are independent

    with pytest.raises(ConflictError, match="already has an active deployment") as info:
        _deploy(store, unique, champion_version=4, challenger_version=5, weights={4: 100})
    assert first.id in str(info.value) and "pending" in str(info.value)
    # Not even a finished one (a direct deploy): replicas follow the newest deployment.
    with pytest.raises(ConflictError, match=first.id):
        _deploy(store, unique, policy="direct", state="promoted", weights={4: 100})

    store.update_deployment(
        first.id, expected_version=1, state="rolled_back", event=_event("rolled_back")
    )
    second = _deploy(store, unique, champion_version=3, challenger_version=5, weights={3: 100})
    assert store.active_deployment(unique) == second
    assert store.active_deployment(f"{unique}-other") == other_project


def test_the_database_itself_refuses_a_second_active_deployment(
    store: MetadataStore, unique: str
) -> None:
    # Even a client that skips the store's check (another tool, a psql session) cannot add one.
    first = _deploy(store, unique)
    engine = sa.create_engine(store.url)
    insert = sa.text(
        "INSERT INTO deployments (id, project, champion_version, policy, config, weights, "
        "shadow_rate, state, step, created_at, updated_at, actor, reason, version) VALUES "
        "(:id, :project, 1, 'canary', '{}', '{}', 0, :state, 0, '2030-01-01 00:00:00.000000', "
        "'2030-01-01 00:00:00.000000', 'a', '', 1)"
    )
    try:
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(insert, {"id": uuid.uuid4().hex, "project": unique, "state": "paused"})
        with engine.begin() as conn:  # finished deployments do not count
            conn.execute(insert, {"id": uuid.uuid4().hex, "project": unique, "state": "failed"})
    finally:
        engine.dispose()
    assert store.active_deployment(unique) == first


def test_update_changes_fields_bumps_version_and_appends_its_event(
    store: MetadataStore, unique: str
) -> None:
    deployment = _deploy(store, unique)
    started = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    rolling = store.update_deployment(
        deployment.id,
        expected_version=1,
        state=DeploymentState.ROLLING,
        weights={3: 95, 4: 5},
        step=0,
        step_started_at=started,
        event=_event("advanced", reason="challenger loaded on every replica"),
    )
    assert (rolling.state, rolling.weights, rolling.version) == (
        DeploymentState.ROLLING,
        {3: 95.0, 4: 5.0},
        2,
    )
    assert rolling.step_started_at == started and rolling.updated_at > deployment.updated_at
    assert (rolling.actor, rolling.reason) == ("controller", "challenger loaded on every replica")
    assert (rolling.created_at, rolling.config) == (deployment.created_at, deployment.config)

    metrics = {"requests": 812, "error_rate": 0.0, "p99_ms": 4.2, "psi": 0.01}
    paused = store.update_deployment(
        deployment.id,
        expected_version=2,
        state="paused",
        event=_event("paused", actor="bob", reason="holiday freeze", metrics=metrics),
    )
    assert (paused.state, paused.weights, paused.version) == (
        DeploymentState.PAUSED,
        {3: 95, 4: 5},
        3,
    )
    note = store.update_deployment(deployment.id, expected_version=3, event=_event("note"))
    assert (note.state, note.version) == (DeploymentState.PAUSED, 4)
    assert store.get_deployment(deployment.id) == note

    events = store.list_deployment_events(deployment.id)
    assert [event.kind for event in events] == ["created", "advanced", "paused", "note"]
    assert [(event.from_state, event.to_state) for event in events] == [
        (None, "pending"),
        ("pending", "rolling"),
        ("rolling", "paused"),
        ("paused", "paused"),
    ]
    assert events[1].weights == {3: 95.0, 4: 5.0} and events[1].at == rolling.updated_at
    assert (events[2].actor, events[2].reason, events[2].metrics) == (
        "bob",
        "holiday freeze",
        metrics,
    )
    assert [event.id for event in events] == sorted(event.id for event in events)


def test_update_is_compare_and_set(store: MetadataStore, unique: str) -> None:
    deployment = _deploy(store, unique)
    store.update_deployment(deployment.id, expected_version=1, state="rolling", event=_event())

    with pytest.raises(ConflictError, match="version 2, not 1"):
        store.update_deployment(
            deployment.id, expected_version=1, state="rolled_back", event=_event("rolled_back")
        )
    current = store.get_deployment(deployment.id)
    assert (current.state, current.version) == (DeploymentState.ROLLING, 2)
    assert len(store.list_deployment_events(deployment.id)) == 2  # the loser left no event


@pytest.mark.parametrize("final", ["promoted", "rolled_back", "failed"])
def test_finished_deployments_never_change(store: MetadataStore, unique: str, final: str) -> None:
    deployment = _deploy(store, unique)
    weights = {4: 100} if final == "promoted" else {3: 100}
    done = store.update_deployment(
        deployment.id, expected_version=1, state=final, weights=weights, event=_event(final)
    )
    assert done.state.terminal and not done.state.active

    for change in ({"state": "rolling"}, {"weights": {3: 50, 4: 50}}, {}):
        with pytest.raises(ConflictError, match=f"is {final}, which is final"):
            store.update_deployment(deployment.id, expected_version=2, event=_event(), **change)
    assert store.get_deployment(deployment.id) == done
    assert store.active_deployment(unique) is None
    assert store.latest_deployment(unique) == done


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"weights": {3: 90, 4: 5}}, "sum to 100"),
        ({"weights": {3: 101, 4: -1}}, "percentage >= 0"),
        ({"weights": {3: math.nan, 4: 100}}, "percentage >= 0"),
        ({"weights": {3: 50, 7: 50}}, "version 7, which is neither"),
        ({"weights": {}}, "map model versions"),
        ({"weights": {"3": 100}}, "model version number"),
        ({"state": "exploded"}, "unknown deployment state 'exploded'"),
        ({"step": -1}, "non-negative integer"),
        ({"shadow_rate": 1.5}, "from 0 to 1"),
        ({"shadow_version": 0}, "model version number"),
        ({"challenger_version": 3}, "must differ from the champion"),
        ({"challenger_version": None}, "version 4, which is neither"),  # weights still name it
        ({"step_started_at": datetime(2030, 1, 1)}, "timezone-aware"),
        ({"event": DeploymentEventInput(kind=" ", actor="a")}, "event kind"),
        ({"event": DeploymentEventInput(kind="k", actor="a", metrics={"x": math.inf})}, "JSON"),
    ],
)
def test_update_rejects_invalid_changes_and_changes_nothing(
    store: MetadataStore, unique: str, change: dict[str, Any], match: str
) -> None:
    deployment = _deploy(store, unique)
    arguments: dict[str, Any] = {"event": _event(), **change}
    with pytest.raises((ValueError, TypeError), match=match):
        store.update_deployment(deployment.id, expected_version=1, **arguments)
    assert store.get_deployment(deployment.id) == deployment
    assert len(store.list_deployment_events(deployment.id)) == 1


def test_challenger_can_be_replaced_together_with_the_weights(
    store: MetadataStore, unique: str
) -> None:
    deployment = _deploy(store, unique)
    shadow = store.update_deployment(
        deployment.id,
        expected_version=1,
        challenger_version=None,
        weights={3: 100},
        shadow_version=4,
        shadow_rate=0.25,
        event=_event("note", reason="switch to shadow"),
    )
    assert (shadow.challenger_version, shadow.weights) == (None, {3: 100.0})
    assert (shadow.shadow_version, shadow.shadow_rate) == (4, 0.25)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"policy": "yolo"}, "unknown deployment policy 'yolo'; expected one of canary"),
        ({"champion_version": 0}, "champion_version must be a model version"),
        ({"champion_version": True}, "champion_version must be a model version"),
        ({"challenger_version": 3}, "must differ from the champion"),
        ({"weights": {3: 99.5, 4: 0.4}}, "sum to 100"),
        ({"project": ""}, "project must be a non-empty string"),
        ({"actor": ""}, "actor must be a non-empty string"),
        ({"config": {"bad": object()}}, "JSON-serializable"),
        ({"step_started_at": datetime(2030, 1, 1)}, "timezone-aware"),
    ],
)
def test_create_rejects_invalid_arguments(
    store: MetadataStore, unique: str, change: dict[str, Any], match: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        _deploy(store, unique, **change)
    assert store.latest_deployment(unique) is None


def test_weights_tolerate_rounding(store: MetadataStore, unique: str) -> None:
    deployment = _deploy(store, unique, weights={3: 100 - 1 / 3 - 2 / 3, 4: 1 / 3 + 2 / 3})
    assert math.isclose(sum(deployment.weights.values()), 100)


def test_listing_latest_and_active(store: MetadataStore, unique: str) -> None:
    assert store.latest_deployment(unique) is None and store.active_deployment(unique) is None
    assert store.list_deployments(unique) == []
    done = []
    for challenger in (4, 5, 6):
        deployment = _deploy(store, unique, challenger_version=challenger, weights={3: 100})
        done.append(
            store.update_deployment(
                deployment.id, expected_version=1, state="failed", event=_event("failed")
            )
        )
    active = _deploy(store, unique, challenger_version=7, weights={3: 100})

    assert store.list_deployments(unique) == [active, *reversed(done)]
    assert store.list_deployments(unique, limit=2) == [active, done[2]]
    assert store.list_deployments(limit=1) == [active]
    assert store.latest_deployment(unique) == store.active_deployment(unique) == active
    with pytest.raises(ValueError, match="limit"):
        store.list_deployments(unique, limit=0)


def test_stamp_changes_with_every_change_and_every_new_deployment(
    store: MetadataStore, unique: str
) -> None:
    assert store.deployment_stamp(unique) is None
    deployment = _deploy(store, unique)
    assert store.deployment_stamp(unique) == DeploymentStamp(deployment.id, 1)
    store.update_deployment(
        deployment.id, expected_version=1, state="promoted", weights={4: 100}, event=_event()
    )
    assert store.deployment_stamp(unique) == DeploymentStamp(deployment.id, 2)
    newer = _deploy(store, unique, champion_version=4, challenger_version=5, weights={4: 100})
    assert store.deployment_stamp(unique) == DeploymentStamp(newer.id, 1)


def test_unknown_ids_are_not_found(store: MetadataStore, unique: str) -> None:
    deployment = _deploy(store, unique)
    with pytest.raises(RecordNotFoundError, match="no deployment"):
        store.get_deployment("f" * 32)
    with pytest.raises(RecordNotFoundError, match="no deployment"):
        store.update_deployment("0" * 32, expected_version=1, event=_event())
    with pytest.raises(RecordNotFoundError, match="full id"):
        store.update_deployment(deployment.id[:8], expected_version=1, event=_event())
    with pytest.raises(RecordNotFoundError, match="no deployment"):
        store.list_deployment_events("0" * 32)


def test_deployment_records_are_frozen_and_detached(store: MetadataStore, unique: str) -> None:
    deployment = _deploy(store, unique, config={"steps": [5, 100]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        deployment.state = DeploymentState.FAILED  # type: ignore[misc]
    deployment.weights[4] = 100.0
    deployment.config["steps"].append(1)
    again = store.get_deployment(deployment.id)
    assert again.weights == {3: 100.0, 4: 0.0} and again.config == {"steps": [5, 100]}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE deployment_events SET reason = 'rewritten' WHERE deployment_id = :id",
        "DELETE FROM deployment_events WHERE deployment_id = :id",
    ],
)
def test_event_history_rejects_update_and_delete_in_the_database(
    store: MetadataStore, unique: str, statement: str
) -> None:
    deployment = _deploy(store, unique)
    history = store.list_deployment_events(deployment.id)
    engine = sa.create_engine(store.url)
    statements = [statement]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE deployment_events")
    try:
        for sql in statements:
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(sa.text(sql), {"id": deployment.id})
    finally:
        engine.dispose()
    assert store.list_deployment_events(deployment.id) == history


def test_step_started_at_comes_back_in_utc(store: MetadataStore, unique: str) -> None:
    local = datetime(2030, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    deployment = _deploy(store, unique, step_started_at=local)
    assert deployment.step_started_at == local
    stored = store.get_deployment(deployment.id).step_started_at
    assert stored is not None and stored.tzinfo is UTC and stored.hour == 17


@pytest.mark.integration
def test_postgres_notifies_listeners_of_every_change(postgres_url: str, unique: str) -> None:
    import psycopg

    with MetadataStore(postgres_url) as store:
        libpq_url = postgres_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(libpq_url, autocommit=True) as listener:
            listener.execute(f"LISTEN {DEPLOYMENT_CHANNEL}")
            deployment = _deploy(store, unique)
            store.update_deployment(
                deployment.id, expected_version=1, state="rolling", event=_event()
            )
            received = [
                note.payload
                for note in listener.notifies(timeout=5, stop_after=2)
                if note.payload == unique
            ]
    assert received == [unique, unique]
