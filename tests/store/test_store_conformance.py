"""One behaviour suite that every metadata store backend (SQLite, PostgreSQL) must pass.

The PostgreSQL database is shared by the session, so every test scopes its rows with names
built from the ``unique`` fixture.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from conveyor.errors import ConflictError, MigrationError, RecordNotFoundError
from conveyor.store import MetadataStore, RunRecord, RunStatus, StepStatus
from conveyor.store._migrate import HEAD, VERSION_TABLE, alembic_config
from conveyor.store._tables import Base


def _run(store: MetadataStore, project: str, **overrides: object) -> RunRecord:
    fields: dict[str, object] = {
        "project": project,
        "spec_hash": "spec-1",
        "actor": "alice",
        "hostname": "laptop",
        "pid": 4242,
    }
    fields.update(overrides)
    return store.create_run(**fields)  # type: ignore[arg-type]


# -- runs ----------------------------------------------------------------------------------


def test_create_run_sets_defaults_and_reads_back_equal(store: MetadataStore, unique: str) -> None:
    before = datetime.now(UTC)
    run = _run(store, unique, trigger="schedule", tags={"team": "risk"})

    assert len(run.id) == 32 and int(run.id, 16) >= 0
    assert (run.project, run.status, run.trigger, run.actor) == (
        unique,
        RunStatus.RUNNING,
        "schedule",
        "alice",
    )
    assert (run.hostname, run.pid, run.spec_hash) == ("laptop", 4242, "spec-1")
    assert (run.attempt, run.version, run.error, run.finished_at) == (1, 1, None, None)
    assert run.tags == {"team": "risk"}
    assert run.created_at.tzinfo is UTC and before <= run.created_at <= datetime.now(UTC)
    assert run.heartbeat_at == run.created_at
    assert store.get_run(run.id) == run


def test_get_run_accepts_unique_prefix_in_any_case(store: MetadataStore, unique: str) -> None:
    run = _run(store, unique)
    assert store.get_run(run.id[:8]) == run
    assert store.get_run(f"  {run.id[:10].upper()} ") == run


def test_get_run_rejects_unknown_short_and_ambiguous_ids(
    store: MetadataStore, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = unique[:8]
    ids = iter([uuid.UUID(prefix + "0" * 23 + "1"), uuid.UUID(prefix + "0" * 23 + "2")])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(ids))
    first, second = _run(store, unique), _run(store, unique)

    with pytest.raises(RecordNotFoundError, match="ambiguous") as info:
        store.get_run(prefix)
    assert first.id in str(info.value) and second.id in str(info.value)
    assert store.get_run(first.id) == first
    with pytest.raises(RecordNotFoundError, match="at least 4 characters"):
        store.get_run(first.id[:3])
    with pytest.raises(RecordNotFoundError, match="no run"):
        store.get_run("f" * 32)
    with pytest.raises(RecordNotFoundError, match="no run"):
        store.get_run("%" * 8)  # LIKE wildcards are matched literally


def test_list_runs_newest_first_with_project_filter_and_limit(
    store: MetadataStore, unique: str
) -> None:
    runs = [_run(store, f"{unique}-a"), _run(store, f"{unique}-b"), _run(store, f"{unique}-a")]

    assert store.list_runs(project=f"{unique}-a") == [runs[2], runs[0]]
    assert store.list_runs(project=f"{unique}-a", limit=1) == [runs[2]]
    assert store.list_runs(project=f"{unique}-none") == []
    newest_overall = [run.id for run in store.list_runs(limit=3)]
    assert newest_overall == [runs[2].id, runs[1].id, runs[0].id]
    with pytest.raises(ValueError, match="limit"):
        store.list_runs(limit=0)


def test_latest_run_filters_by_status(store: MetadataStore, unique: str) -> None:
    failed = _run(store, unique)
    store.update_run(failed.id, status=RunStatus.FAILED)
    running = _run(store, unique)

    assert store.latest_run(project=unique) == running
    latest_failed = store.latest_run(
        project=unique, statuses=[RunStatus.FAILED, RunStatus.INTERRUPTED]
    )
    assert latest_failed is not None and latest_failed.id == failed.id
    assert store.latest_run(project=unique, statuses=[RunStatus.SUCCEEDED]) is None
    assert store.latest_run(project=f"{unique}-none") is None


def test_update_run_changes_only_given_fields_and_bumps_version(
    store: MetadataStore, unique: str
) -> None:
    run = _run(store, unique, tags={"k": "v"})
    # Another zone on purpose: the store must return the same instant in UTC.
    finished = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))

    failed = store.update_run(run.id, status=RunStatus.FAILED, error="boom", finished_at=finished)
    assert (failed.status, failed.error, failed.version) == (RunStatus.FAILED, "boom", 2)
    assert failed.finished_at == finished and failed.finished_at.tzinfo is UTC
    assert failed.finished_at.hour == 1
    unchanged = ("project", "hostname", "pid", "attempt", "tags", "created_at", "heartbeat_at")
    assert all(getattr(failed, name) == getattr(run, name) for name in unchanged)

    resumed = store.update_run(
        run.id,
        status=RunStatus.RUNNING,
        error=None,
        finished_at=None,
        attempt=2,
        pid=99,
        hostname="server",
    )
    assert (resumed.error, resumed.finished_at, resumed.attempt) == (None, None, 2)
    assert (resumed.pid, resumed.hostname, resumed.version) == (99, "server", 3)
    assert store.get_run(run.id) == resumed


def test_update_run_compare_and_set(store: MetadataStore, unique: str) -> None:
    run = _run(store, unique)
    updated = store.update_run(run.id, expected_version=1, status=RunStatus.SUCCEEDED)
    assert updated.version == 2

    with pytest.raises(ConflictError, match="version 2, not 1"):
        store.update_run(run.id, expected_version=1, status=RunStatus.FAILED)
    assert store.get_run(run.id) == updated  # the losing write changed nothing


def test_update_run_rejects_unknown_ids_and_naive_datetimes(
    store: MetadataStore, unique: str
) -> None:
    run = _run(store, unique)
    with pytest.raises(RecordNotFoundError, match="no run"):
        store.update_run("0" * 32, status=RunStatus.FAILED)
    with pytest.raises(RecordNotFoundError):
        store.update_run(run.id[:8], status=RunStatus.FAILED)  # writes need the full id
    with pytest.raises(ValueError, match="timezone-aware"):
        store.update_run(run.id, finished_at=datetime(2030, 1, 1))
    with pytest.raises(ValueError):
        store.update_run(run.id, status="exploded")  # type: ignore[arg-type]
    assert store.get_run(run.id) == run


def test_heartbeat_moves_forward_and_counts_as_a_change(store: MetadataStore, unique: str) -> None:
    run = _run(store, unique)
    store.heartbeat(run.id)
    beaten = store.get_run(run.id)
    assert beaten.heartbeat_at > run.heartbeat_at and beaten.version == 2
    with pytest.raises(RecordNotFoundError):
        store.heartbeat("0" * 32)


def test_merge_run_tags_keeps_other_keys(store: MetadataStore, unique: str) -> None:
    run = _run(store, unique, tags={"a": "1", "b": "2"})
    merged = store.merge_run_tags(run.id, {"b": "20", "c": "3"})
    assert merged.tags == {"a": "1", "b": "20", "c": "3"} and merged.version == 2
    assert store.get_run(run.id) == merged
    with pytest.raises(TypeError, match="strings"):
        store.merge_run_tags(run.id, {"n": 1})  # type: ignore[dict-item]
    with pytest.raises(RecordNotFoundError):
        store.merge_run_tags("0" * 32, {"a": "b"})


# -- step runs -----------------------------------------------------------------------------


def test_upsert_step_run_inserts_defaults_then_changes_only_given_fields(
    store: MetadataStore, unique: str
) -> None:
    run = _run(store, unique)
    created = store.upsert_step_run(run.id, "ingest")
    assert (created.status, created.attempts, created.input_hashes) == (StepStatus.PENDING, 0, {})
    assert (created.cache_key, created.started_at, created.error) == (None, None, None)

    started = datetime.now(UTC)
    running = store.upsert_step_run(
        run.id,
        "ingest",
        status=StepStatus.RUNNING,
        started_at=started,
        attempts=1,
        input_hashes={"raw": "h1"},
        code_version="c1",
        config_hash="k1",
    )
    done = store.upsert_step_run(
        run.id,
        "ingest",
        status=StepStatus.SUCCEEDED,
        finished_at=started + timedelta(seconds=2),
        duration_s=2.0,
        output_hashes={"table": "h2"},
        cache_key="key-1",
    )
    assert running.started_at == started and running.attempts == 1
    assert (done.status, done.started_at, done.attempts) == (StepStatus.SUCCEEDED, started, 1)
    assert (done.input_hashes, done.output_hashes) == ({"raw": "h1"}, {"table": "h2"})
    assert (done.code_version, done.config_hash, done.cache_key) == ("c1", "k1", "key-1")
    assert done.duration_s == 2.0 and done.finished_at == started + timedelta(seconds=2)
    cleared = store.upsert_step_run(run.id, "ingest", error=None, cache_key=None)
    assert cleared.cache_key is None and cleared.status is StepStatus.SUCCEEDED


def test_list_step_runs_keeps_insertion_order(store: MetadataStore, unique: str) -> None:
    run, other = _run(store, unique), _run(store, unique)
    for name in ("validate", "ingest", "train"):
        store.upsert_step_run(run.id, name, status=StepStatus.RUNNING)
    store.upsert_step_run(run.id, "validate", status=StepStatus.FAILED, error="bad rows")
    store.upsert_step_run(other.id, "ingest", status=StepStatus.CACHED)

    steps = store.list_step_runs(run.id)
    assert [step.name for step in steps] == ["validate", "ingest", "train"]
    assert steps[0].status is StepStatus.FAILED and steps[0].error == "bad rows"
    assert [step.status for step in store.list_step_runs(other.id)] == [StepStatus.CACHED]
    assert store.list_step_runs("0" * 32) == []


def test_upsert_step_run_needs_an_existing_run(store: MetadataStore) -> None:
    with pytest.raises(RecordNotFoundError, match="no run"):
        store.upsert_step_run("0" * 32, "ingest", status=StepStatus.RUNNING)


# -- step cache ----------------------------------------------------------------------------


def test_put_cache_is_idempotent_and_first_entry_wins(store: MetadataStore, unique: str) -> None:
    run, later = _run(store, unique), _run(store, unique)
    assert store.get_cache(f"{unique}-key") is None

    first = store.put_cache(
        cache_key=f"{unique}-key", step="train", outputs={"model": "m1"}, run_id=run.id
    )
    again = store.put_cache(
        cache_key=f"{unique}-key", step="other", outputs={"model": "m2"}, run_id=later.id
    )
    assert (first.step, first.outputs, first.run_id) == ("train", {"model": "m1"}, run.id)
    assert again == first == store.get_cache(f"{unique}-key")
    with pytest.raises(RecordNotFoundError):
        store.put_cache(cache_key=f"{unique}-x", step="s", outputs={}, run_id="0" * 32)


# -- dataset versions ----------------------------------------------------------------------


def test_dataset_versions_are_idempotent_by_id(store: MetadataStore, unique: str) -> None:
    run = _run(store, unique)
    schema = {"columns": [{"name": "fare", "type": "double", "nullable": False}]}
    source = {"kind": "file", "path": "data/trips.csv", "options": {"header": True}}
    first = store.add_dataset_version(
        id=f"{unique}aa",
        name=f"trips-{unique}",
        sha256="a" * 64,
        row_count=3_000_000_000,  # beyond 32-bit integers
        schema=schema,
        source=source,
        parents=("p1", "p2"),
        run_id=run.id,
    )
    assert (first.schema, first.source, first.parents) == (schema, source, ["p1", "p2"])
    assert (first.row_count, first.run_id) == (3_000_000_000, run.id)
    assert first.created_at.tzinfo is UTC

    again = store.add_dataset_version(
        id=f"{unique}aa",
        name=f"trips-{unique}",
        sha256="a" * 64,
        row_count=1,
        schema={},
        source={},
    )
    assert again == first == store.get_dataset_version(f"{unique}aa")
    with pytest.raises(ConflictError, match="sha256"):
        store.add_dataset_version(
            id=f"{unique}aa", name="x", sha256="b" * 64, row_count=1, schema={}, source={}
        )
    with pytest.raises(RecordNotFoundError):
        store.add_dataset_version(
            id=f"{unique}bb", name="x", sha256="b" * 64, row_count=1, schema={}, source={},
            run_id="0" * 32,
        )  # fmt: skip
    with pytest.raises(TypeError, match="JSON"):
        store.add_dataset_version(
            id=f"{unique}cc", name="x", sha256="c" * 64, row_count=1, schema={"t": object()},
            source={},
        )  # fmt: skip


def test_dataset_version_prefix_lookup_and_listing(store: MetadataStore, unique: str) -> None:
    def add(suffix: str, name: str) -> str:
        store.add_dataset_version(
            id=f"{unique}{suffix}", name=name, sha256=suffix * 64, row_count=1, schema={},
            source={},
        )  # fmt: skip
        return f"{unique}{suffix}"

    a1, b1, a2 = add("1", f"{unique}-a"), add("2", f"{unique}-b"), add("3", f"{unique}-a")

    assert [v.id for v in store.list_dataset_versions(name=f"{unique}-a")] == [a2, a1]
    assert [v.id for v in store.list_dataset_versions(name=f"{unique}-a", limit=1)] == [a2]
    assert [v.id for v in store.list_dataset_versions(limit=3)] == [a2, b1, a1]
    assert store.get_dataset_version(unique + "2").id == b1
    with pytest.raises(RecordNotFoundError, match="ambiguous"):
        store.get_dataset_version(unique)
    with pytest.raises(RecordNotFoundError, match="no dataset version"):
        store.get_dataset_version(f"{unique}9")


# -- audit log -----------------------------------------------------------------------------


def test_audit_log_appends_and_lists_newest_first(store: MetadataStore, unique: str) -> None:
    first = store.append_audit(actor="alice", action="deploy", target=unique, reason="canary ok")
    store.append_audit(actor="bob", action="promote", target=f"{unique}-other")
    last = store.append_audit(
        actor="ci", action="rollback", target=unique, details={"from": 3, "to": [2, {"x": None}]}
    )

    assert last.id > first.id and last.at >= first.at and last.at.tzinfo is UTC
    assert (first.actor, first.action, first.reason, first.details) == (
        "alice",
        "deploy",
        "canary ok",
        {},
    )
    assert store.list_audit(target=unique) == [last, first]
    assert store.list_audit(target=unique, limit=1) == [last]
    assert [entry.action for entry in store.list_audit(limit=2)] == ["rollback", "promote"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET reason = 'rewritten' WHERE target = :target",
        "DELETE FROM audit_log WHERE target = :target",
    ],
)
def test_audit_log_rejects_update_and_delete_in_the_database(
    store: MetadataStore, unique: str, statement: str
) -> None:
    entry = store.append_audit(actor="alice", action="deploy", target=unique, reason="why")
    engine = sa.create_engine(store.url)
    statements = [statement]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_log")
    try:
        for sql in statements:
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(sa.text(sql), {"target": unique})
    finally:
        engine.dispose()
    assert store.list_audit(target=unique) == [entry]


# -- records, migrations -------------------------------------------------------------------


def test_records_are_frozen_and_detached(store: MetadataStore, unique: str) -> None:
    run = _run(store, unique, tags={"a": "1"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.status = RunStatus.FAILED  # type: ignore[misc]
    run.tags["a"] = "changed"
    assert store.get_run(run.id).tags == {"a": "1"}


def test_opening_a_migrated_database_again_is_a_no_op(store_url: str, unique: str) -> None:
    with MetadataStore(store_url) as first:
        run = _run(first, unique)
    with MetadataStore(store_url) as second, MetadataStore(store_url) as third:
        assert second.get_run(run.id) == run == third.get_run(run.id)
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            revisions = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    finally:
        engine.dispose()
    assert revisions == [(HEAD,)]


def test_upgrade_keeps_what_an_older_schema_stored(backend_url: Callable[..., str]) -> None:
    """A database made by the first release opens under this code, migrated, data intact."""
    url = backend_url("sqlite")
    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0001")
            conn.execute(
                sa.text(
                    "INSERT INTO dataset_versions (id, name, sha256, row_count, schema, source, "
                    "parents, created_at) VALUES ('old1', 'flights', :sha, 10, '{}', '{}', '[]', "
                    "'2026-01-01 00:00:00.000000')"
                ),
                {"sha": "a" * 64},
            )
    finally:
        engine.dispose()
    with MetadataStore(url) as store:
        old = store.get_dataset_version("old1")
        assert (old.name, old.row_count, old.artifacts, old.stats) == ("flights", 10, {}, {})
        new = store.add_dataset_version(
            id="new1",
            name="flights",
            sha256="b" * 64,
            row_count=1,
            schema={},
            source={},
            artifacts={"data": "b" * 64},
            stats={"quarantined": 0},
        )
        assert store.get_dataset_version("new1") == new
        assert new.artifacts == {"data": "b" * 64} and new.stats == {"quarantined": 0}


def test_database_from_a_newer_conveyor_raises_migration_error(
    store_url: str, backend_url: Callable[..., str]
) -> None:
    kind = "postgresql" if store_url.startswith("postgresql") else "sqlite"
    url = backend_url(kind, fresh=True)  # the version table of the shared one must stay intact
    MetadataStore(url).close()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999_future'"))
    finally:
        engine.dispose()

    with pytest.raises(MigrationError, match=r"9999_future.*newer Conveyor.*Upgrade conveyor"):
        MetadataStore(url)


@pytest.fixture
def fresh_store(backend: str, backend_url: Callable[..., str]) -> Iterator[MetadataStore]:
    """A store in a database of its own: schema comparisons must not see other tests' tables."""
    with MetadataStore(backend_url(backend, fresh=True)) as opened:
        yield opened


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def test_orm_metadata_matches_the_migrations(backend: str, fresh_store: MetadataStore) -> None:
    store = fresh_store
    engine = sa.create_engine(store.url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
            )
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], "the ORM tables differ from the migrations; add a migration"


@pytest.mark.integration
def test_repr_hides_the_password(postgres_url: str) -> None:
    # Trust authentication ignores the password, so the URL still connects.
    url = postgres_url.replace("://postgres@", "://postgres:s3cret-pw@")
    with MetadataStore(url) as store:
        assert "s3cret-pw" not in repr(store) and "***" in repr(store)
        assert store.url == url


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def test_metadata_comparison_catches_a_table_without_migration(
    backend: str, fresh_store: MetadataStore
) -> None:
    store = fresh_store
    metadata = sa.MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    sa.Table("feature_views", metadata, sa.Column("id", sa.Integer, primary_key=True))
    engine = sa.create_engine(store.url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            diff = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert [(op[0], op[1].name) for op in diff] == [("add_table", "feature_views")]


def test_migrations_downgrade_to_empty_and_upgrade_again(
    store_url: str, backend_url: Callable[..., str]
) -> None:
    kind = "postgresql" if store_url.startswith("postgresql") else "sqlite"
    url = backend_url(kind, fresh=True)
    MetadataStore(url).close()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        with engine.connect() as conn:
            left = set(sa.inspect(conn).get_table_names()) - {VERSION_TABLE}
        assert left == set()
    finally:
        engine.dispose()
    with MetadataStore(url) as store:
        run = _run(store, "again")
        assert store.get_run(run.id) == run
