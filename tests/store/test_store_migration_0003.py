"""Migration 0003 (deployments, events, serving statistics, leases) on an existing database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from conveyor.store import DeploymentEventInput, DeploymentState, MetadataStore
from conveyor.store._migrate import HEAD, VERSION_TABLE, alembic_config
from conveyor.store._tables import ACTIVE_DEPLOYMENT_STATES

NEW_TABLES = {"deployments", "deployment_events", "serving_stats", "leases"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def empty_url(request: pytest.FixtureRequest, backend_url: Callable[..., str]) -> str:
    """An empty database of its own on each backend (migrations must not touch others')."""
    url: str = backend_url(request.param, fresh=True)
    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    return url


@pytest.fixture
def engine(empty_url: str) -> Iterator[sa.Engine]:
    created = sa.create_engine(empty_url)
    yield created
    created.dispose()


def _tables(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names()) - {VERSION_TABLE}


MONITORING_TABLES = frozenset({"monitor_runs", "alerts", "retrain_triggers"})


def _revision(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return str(conn.scalar(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")))


def test_opening_a_0002_database_adds_the_tables_and_keeps_the_data(
    empty_url: str, engine: sa.Engine
) -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0002")
        conn.execute(
            sa.text(
                "INSERT INTO audit_log (at, actor, action, target, reason, details) VALUES "
                "('2026-01-01 00:00:00.000000', 'alice', 'deploy', 'old', 'kept', '{}')"
            )
        )
    assert _tables(engine).isdisjoint(NEW_TABLES)

    with MetadataStore(empty_url) as store:
        assert _revision(engine) == HEAD
        assert NEW_TABLES <= _tables(engine)
        [old] = store.list_audit(target="old")
        assert (old.actor, old.reason) == ("alice", "kept")
        deployment = store.create_deployment(
            project="p", champion_version=1, policy="direct", weights={1: 100}, actor="a"
        )
        assert store.list_deployment_events(deployment.id)[0].kind == "created"
        assert store.acquire_lease("controller:p", "me", 30)


def test_downgrading_0003_removes_only_its_tables_and_upgrading_again_works(
    empty_url: str, engine: sa.Engine
) -> None:
    with MetadataStore(empty_url) as store:
        run = store.create_run(project="p", spec_hash="s", actor="a", hostname="h", pid=1)
        deployment = store.create_deployment(
            project="p", champion_version=1, policy="direct", weights={1: 100}, actor="a"
        )
    before = _tables(engine)

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0002")
    assert _revision(engine) == "0002"
    assert _tables(engine) == before - NEW_TABLES - MONITORING_TABLES
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            functions = conn.scalars(
                sa.text("SELECT proname FROM pg_proc WHERE proname LIKE 'conveyor_%'")
            ).all()
        assert functions == ["conveyor_audit_log_append_only"]

    with MetadataStore(empty_url) as store:
        assert store.get_run(run.id) == run  # older data survives the round trip
        assert store.latest_deployment("p") is None
        again = store.create_deployment(
            project="p", champion_version=1, policy="direct", weights={1: 100}, actor="a"
        )
        assert again.id != deployment.id
        store.update_deployment(
            again.id,
            expected_version=1,
            state="promoted",
            event=DeploymentEventInput(kind="promoted", actor="a"),
        )
    assert _tables(engine) == before


def test_the_one_active_deployment_index_is_partial(engine: sa.Engine, empty_url: str) -> None:
    MetadataStore(empty_url).close()
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            definition = conn.scalar(
                sa.text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = "
                    "'uq_deployments_active_project'"
                )
            )
        else:
            definition = conn.scalar(
                sa.text(
                    "SELECT sql FROM sqlite_master WHERE name = 'uq_deployments_active_project'"
                )
            )
    assert "UNIQUE" in str(definition).upper() and "WHERE" in str(definition).upper()
    # The index and DeploymentState must agree on which states are active.
    assert [s for s in DeploymentState if f"'{s.value}'" in str(definition)] == [
        s for s in DeploymentState if s.active
    ]
    assert set(ACTIVE_DEPLOYMENT_STATES) == {s.value for s in DeploymentState if s.active}


def test_migration_0004_adds_and_removes_only_the_monitoring_tables(
    empty_url: str, engine: sa.Engine
) -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0003")
    with MetadataStore(empty_url) as store:
        deployment = store.create_deployment(
            project="p", champion_version=1, policy="direct", weights={1: 100}, actor="a"
        )
        store.add_monitor_run("p", "drift", rows=1, flagged=True, score=0.5)
    assert MONITORING_TABLES <= _tables(engine)
    before = _tables(engine)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0003")
    assert _tables(engine) == before - MONITORING_TABLES
    with MetadataStore(empty_url) as store:
        assert store.get_deployment(deployment.id) == deployment
        assert store.list_monitor_runs("p") == []
