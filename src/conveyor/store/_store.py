"""The metadata store: Conveyor's own tables behind one small, typed API."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from conveyor.errors import ConflictError, RecordNotFoundError

from . import _convert as cv
from ._alerts import AlertStore
from ._deployments import DeploymentStore
from ._engine import READ_ONLY, build_engine, redact
from ._leases import LeaseStore
from ._migrate import upgrade_to_head
from ._monitoring import MonitoringStore
from ._records import (
    UNSET,
    AuditEntry,
    CacheEntry,
    DatasetVersionRecord,
    RunRecord,
    RunStatus,
    StepRunRecord,
    StepStatus,
    Unset,
)
from ._serving_stats import ServingStatsStore
from ._tables import AuditRow, CacheRow, DatasetVersionRow, RunRow, StepRunRow

__all__ = ["MetadataStore"]


class MetadataStore(DeploymentStore, ServingStatsStore, LeaseStore, MonitoringStore, AlertStore):
    """Runs and their steps, the step cache, dataset versions, the audit log, deployments and
    their history, serving statistics, leases, monitoring runs, alerts and retraining triggers.

    Opening a store creates the database (and, for SQLite, its folder) if needed and migrates
    it to the schema this code needs, serialized against other processes doing the same.

    Invariants:
        * Thread and process safety: one instance may be shared by threads; any number of
          processes (and, with PostgreSQL, machines) may open the same URL. Every method is
          one transaction. Read-modify-write methods (:meth:`merge_run_tags`,
          :meth:`upsert_step_run`, :meth:`put_cache`, ...) are atomic: SQLite transactions take
          the write lock up front (``BEGIN IMMEDIATE``, waiting up to 30 s), PostgreSQL locks
          the row (``SELECT ... FOR UPDATE``) or uses ``INSERT ... ON CONFLICT``. Create a new
          instance in each process; do not carry one across ``fork``.
        * Returned records are frozen dataclasses built for each call; they hold no database
          state and changing a copy never changes the store.
        * Every change to a run increments its ``version``; pass ``expected_version`` to
          :meth:`update_run` to change it only if nobody else did first.
        * The audit log and deployment histories are append-only, enforced by database
          triggers.
        * A project has at most one active deployment, enforced by a unique index.
          :meth:`update_deployment` always compares-and-sets the deployment's ``version`` and
          appends the event explaining the change in the same transaction; a promoted,
          rolled-back or failed deployment never changes again.
        * :meth:`add_serving_stats` adds to the stored counts atomically: concurrent flushes
          of any number of replicas lose nothing.
        * A lease has at most one unexpired holder; of processes racing for a free lease,
          exactly one gets it.
        * :meth:`raise_alert` notifies once per firing (and per re-notification period), however
          many processes raise the same alert.
        * Timestamps are aware UTC datetimes, in and out; naive ones are rejected.

    Raises:
        BackendUnavailableError: The database or its driver cannot be reached or used.
        MigrationError: The schema is newer than this code, or a migration failed.
        RecordNotFoundError: An id or id prefix matches no record (or several).
        ConflictError: ``expected_version`` no longer matches, an id is reused for other
            content, a project already has an active deployment, or a finished deployment
            is changed.
        StoreError: Any other database failure (the root of the errors above).
        TypeError, ValueError: An argument has the wrong type or value.
    """

    def __init__(self, url: str) -> None:
        """Open (creating and migrating if needed) the store at ``url``.

        Args:
            url: ``sqlite:////absolute/path/conveyor.db`` or
                ``postgresql+psycopg://user:password@host:5432/db``.
        """
        self._url = url
        self._engine = build_engine(url)
        # Readers use a deferred BEGIN on SQLite, so they never queue behind writers.
        self._read_engine = self._engine.execution_options(**{READ_ONLY: True})
        try:
            upgrade_to_head(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def url(self) -> str:
        """The URL the store was opened with (``repr`` hides its password)."""
        return self._url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self._url)!r})"

    def close(self) -> None:
        """Close every pooled connection. Idempotent."""
        self._engine.dispose()

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- runs ----------------------------------------------------------------------------

    def create_run(
        self,
        *,
        project: str,
        spec_hash: str,
        actor: str,
        trigger: str = "manual",
        hostname: str,
        pid: int,
        tags: Mapping[str, str] | None = None,
    ) -> RunRecord:
        """Record a new run in status ``running``, attempt 1, version 1."""
        now = cv.utcnow()
        row = RunRow(
            id=uuid.uuid4().hex,
            project=project,
            status=RunStatus.RUNNING.value,
            trigger=trigger,
            actor=actor,
            hostname=hostname,
            pid=pid,
            spec_hash=spec_hash,
            created_at=now,
            finished_at=None,
            heartbeat_at=now,
            attempt=1,
            error=None,
            tags=cv.str_map(tags or {}, "tags"),
            version=1,
        )
        with self._write() as session:
            session.add(row)
            session.flush()
            return cv.run_record(row)

    def get_run(self, run_id: str) -> RunRecord:
        """Return the run whose id is ``run_id`` or starts with it (4+ characters).

        Raises:
            RecordNotFoundError: No run matches, or the prefix matches several.
        """
        with self._read() as session:
            return cv.run_record(cv.by_prefix(session, RunRow, run_id.strip().lower(), "run"))

    def list_runs(self, *, project: str | None = None, limit: int = 20) -> list[RunRecord]:
        """Return up to ``limit`` runs, newest first, optionally of one project only."""
        query = select(RunRow).order_by(RunRow.seq.desc()).limit(cv.positive_limit(limit))
        if project is not None:
            query = query.where(RunRow.project == project)
        with self._read() as session:
            return [cv.run_record(row) for row in session.scalars(query)]

    def latest_run(
        self, *, project: str, statuses: Collection[RunStatus] | None = None
    ) -> RunRecord | None:
        """Return the project's newest run, optionally among the given statuses only."""
        query = select(RunRow).where(RunRow.project == project)
        if statuses is not None:
            query = query.where(RunRow.status.in_([RunStatus(s).value for s in statuses]))
        with self._read() as session:
            row = session.scalars(query.order_by(RunRow.seq.desc()).limit(1)).one_or_none()
            return None if row is None else cv.run_record(row)

    def update_run(
        self,
        run_id: str,
        *,
        expected_version: int | None = None,
        status: RunStatus | Unset = UNSET,
        finished_at: datetime | Unset | None = UNSET,
        error: str | Unset | None = UNSET,
        heartbeat_at: datetime | Unset = UNSET,
        pid: int | Unset = UNSET,
        hostname: str | Unset = UNSET,
        attempt: int | Unset = UNSET,
    ) -> RunRecord:
        """Change the given fields of a run (full id) and increment its version.

        Args:
            run_id: The run's full id.
            expected_version: If given, change the run only if its version still equals
                this (compare-and-set in the ``UPDATE``'s ``WHERE`` clause).
            status: New status.
            finished_at: When the run ended, or ``None`` to clear it (on resume).
            error: Why it failed, or ``None`` to clear it.
            heartbeat_at: Last sign of life.
            pid: Process now executing the run.
            hostname: Machine now executing the run.
            attempt: Attempt number (+1 per resume).

        Raises:
            RecordNotFoundError: No run has this id.
            ConflictError: ``expected_version`` differs from the stored version.
        """
        given: dict[str, Any] = {
            "status": UNSET if status is UNSET else RunStatus(status).value,
            "finished_at": finished_at,
            "error": error,
            "heartbeat_at": heartbeat_at,
            "pid": pid,
            "hostname": hostname,
            "attempt": attempt,
        }
        values = {key: value for key, value in given.items() if value is not UNSET}
        _check_times(values)
        query = update(RunRow).where(RunRow.id == run_id)
        if expected_version is not None:
            query = query.where(RunRow.version == expected_version)
        query = query.values(**values, version=RunRow.version + 1).returning(RunRow)
        with self._write() as session:
            row = session.scalars(query).one_or_none()
            if row is not None:
                return cv.run_record(row)
            stored = session.scalar(select(RunRow.version).where(RunRow.id == run_id))
        if stored is None:
            raise RecordNotFoundError(f"no run with id {run_id!r} (updates need the full id)")
        raise ConflictError(
            f"run {run_id} is at version {stored}, not {expected_version}: another process "
            "changed it first; read it again and decide whether to retry"
        )

    def merge_run_tags(self, run_id: str, tags: Mapping[str, str]) -> RunRecord:
        """Add or overwrite tags of a run (full id), keeping the others; atomic.

        Raises:
            RecordNotFoundError: No run has this id.
        """
        new_tags = cv.str_map(tags, "tags")
        with self._write() as session:
            row = self._locked_run(session, run_id)
            row.tags = {**row.tags, **new_tags}
            row.version += 1
            session.flush()
            return cv.run_record(row)

    def heartbeat(self, run_id: str) -> None:
        """Set the run's ``heartbeat_at`` to now (this is a change: the version increments).

        Counting heartbeats as changes makes a compare-and-set takeover of a run that looked
        dead fail if the run proved alive in between.
        """
        self.update_run(run_id, heartbeat_at=cv.utcnow())

    @staticmethod
    def _locked_run(session: Session, run_id: str) -> RunRow:
        query = select(RunRow).where(RunRow.id == run_id).with_for_update()
        row = session.scalars(query).one_or_none()
        if row is None:
            raise RecordNotFoundError(f"no run with id {run_id!r} (changes need the full id)")
        return row

    # -- step runs -----------------------------------------------------------------------

    def upsert_step_run(
        self,
        run_id: str,
        name: str,
        *,
        status: StepStatus | Unset = UNSET,
        cache_key: str | Unset | None = UNSET,
        code_version: str | Unset | None = UNSET,
        config_hash: str | Unset | None = UNSET,
        input_hashes: Mapping[str, str] | Unset = UNSET,
        output_hashes: Mapping[str, str] | Unset = UNSET,
        started_at: datetime | Unset | None = UNSET,
        finished_at: datetime | Unset | None = UNSET,
        duration_s: float | Unset | None = UNSET,
        attempts: int | Unset = UNSET,
        error: str | Unset | None = UNSET,
    ) -> StepRunRecord:
        """Create the step ``name`` of a run, or change the given fields if it exists; atomic.

        A new step starts as ``pending`` with 0 attempts, no hashes and no times; fields not
        given keep their current (or those initial) values.

        Raises:
            RecordNotFoundError: No run has this id (full id).
        """
        given: dict[str, Any] = {
            "status": UNSET if status is UNSET else StepStatus(status).value,
            "cache_key": cache_key,
            "code_version": code_version,
            "config_hash": config_hash,
            "input_hashes": _maybe_str_map(input_hashes, "input_hashes"),
            "output_hashes": _maybe_str_map(output_hashes, "output_hashes"),
            "started_at": started_at,
            "finished_at": finished_at,
            "duration_s": duration_s,
            "attempts": attempts,
            "error": error,
        }
        changes = {key: value for key, value in given.items() if value is not UNSET}
        _check_times(changes)
        initial: dict[str, Any] = {
            **dict.fromkeys(given),
            "status": StepStatus.PENDING.value,
            "input_hashes": {},
            "output_hashes": {},
            "attempts": 0,
        }
        query = self._insert()(StepRunRow).values(
            {**initial, **changes, "run_id": run_id, "name": name}
        )
        if changes:
            query = query.on_conflict_do_update(index_elements=["run_id", "name"], set_=changes)
        else:
            query = query.on_conflict_do_nothing(index_elements=["run_id", "name"])
        with self._write() as session:
            self._require_run(session, run_id)
            session.execute(query)
            row = session.scalars(
                select(StepRunRow).where(StepRunRow.run_id == run_id, StepRunRow.name == name)
            ).one()
            return cv.step_run_record(row)

    def list_step_runs(self, run_id: str) -> list[StepRunRecord]:
        """Return the run's steps in the order they were first recorded."""
        query = select(StepRunRow).where(StepRunRow.run_id == run_id).order_by(StepRunRow.seq)
        with self._read() as session:
            return [cv.step_run_record(row) for row in session.scalars(query)]

    @staticmethod
    def _require_run(session: Session, run_id: str) -> None:
        if session.scalar(select(RunRow.seq).where(RunRow.id == run_id)) is None:
            raise RecordNotFoundError(f"no run with id {run_id!r} (the full id is needed here)")

    # -- step cache ----------------------------------------------------------------------

    def get_cache(self, cache_key: str) -> CacheEntry | None:
        """Return the cache entry for ``cache_key``, or ``None`` on a miss."""
        with self._read() as session:
            row = session.get(CacheRow, cache_key)
            return None if row is None else cv.cache_entry(row)

    def put_cache(
        self, *, cache_key: str, step: str, outputs: Mapping[str, str], run_id: str
    ) -> CacheEntry:
        """Record a step's outputs under ``cache_key``; the first entry for a key wins.

        Idempotent and safe under concurrency: putting an existing key (even at the same
        moment from another process) returns the stored entry and raises nothing.

        Raises:
            RecordNotFoundError: No run has this id (full id).
        """
        query = (
            self._insert()(CacheRow)
            .values(
                cache_key=cache_key,
                step=step,
                outputs=cv.str_map(outputs, "outputs"),
                run_id=run_id,
                created_at=cv.utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["cache_key"])
        )
        with self._write() as session:
            self._require_run(session, run_id)
            session.execute(query)
            return cv.cache_entry(session.get_one(CacheRow, cache_key))

    # -- dataset versions ----------------------------------------------------------------

    def add_dataset_version(
        self,
        *,
        id: str,
        name: str,
        sha256: str,
        row_count: int,
        schema: Mapping[str, Any],
        source: Mapping[str, Any],
        parents: Sequence[str] = (),
        run_id: str | None = None,
        artifacts: Mapping[str, str] | None = None,
        stats: Mapping[str, Any] | None = None,
    ) -> DatasetVersionRecord:
        """Record a dataset version; recording the same id again returns the stored one.

        Raises:
            ConflictError: The id is already recorded with a different ``sha256``.
            RecordNotFoundError: ``run_id`` is given and no run has it (full id).
        """
        query = (
            self._insert()(DatasetVersionRow)
            .values(
                id=id,
                name=name,
                sha256=sha256,
                row_count=row_count,
                schema=cv.json_value(dict(schema), "schema"),
                source=cv.json_value(dict(source), "source"),
                parents=[str(parent) for parent in parents],
                run_id=run_id,
                created_at=cv.utcnow(),
                artifacts={str(k): str(v) for k, v in (artifacts or {}).items()},
                stats=cv.json_value(dict(stats or {}), "stats"),
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        with self._write() as session:
            if run_id is not None:
                self._require_run(session, run_id)
            session.execute(query)
            row = session.scalars(select(DatasetVersionRow).where(DatasetVersionRow.id == id)).one()
            if row.sha256 != sha256:
                raise ConflictError(
                    f"dataset version {id!r} is already recorded with sha256 {row.sha256}, "
                    f"not {sha256}; content-addressed ids must not be reused for other data"
                )
            return cv.dataset_version_record(row)

    def get_dataset_version(self, id: str) -> DatasetVersionRecord:
        """Return the dataset version whose id is ``id`` or starts with it (4+ characters).

        Raises:
            RecordNotFoundError: No version matches, or the prefix matches several.
        """
        with self._read() as session:
            row = cv.by_prefix(session, DatasetVersionRow, id.strip(), "dataset version")
            return cv.dataset_version_record(row)

    def list_dataset_versions(
        self, *, name: str | None = None, limit: int = 50
    ) -> list[DatasetVersionRecord]:
        """Return up to ``limit`` dataset versions, newest first, optionally of one name."""
        query = (
            select(DatasetVersionRow)
            .order_by(DatasetVersionRow.seq.desc())
            .limit(cv.positive_limit(limit))
        )
        if name is not None:
            query = query.where(DatasetVersionRow.name == name)
        with self._read() as session:
            return [cv.dataset_version_record(row) for row in session.scalars(query)]

    # -- audit log -----------------------------------------------------------------------

    def append_audit(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        reason: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry to the audit log (which can never be changed afterwards)."""
        row = AuditRow(
            at=cv.utcnow(),
            actor=actor,
            action=action,
            target=target,
            reason=reason,
            details=cv.json_value(dict(details or {}), "details"),
        )
        with self._write() as session:
            session.add(row)
            session.flush()
            return cv.audit_entry(row)

    def list_audit(self, *, target: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Return up to ``limit`` audit entries, newest first, optionally for one target."""
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(cv.positive_limit(limit))
        if target is not None:
            query = query.where(AuditRow.target == target)
        with self._read() as session:
            return [cv.audit_entry(row) for row in session.scalars(query)]


def _maybe_str_map(value: Mapping[str, str] | Unset, what: str) -> dict[str, str] | Unset:
    return value if isinstance(value, Unset) else cv.str_map(value, what)


def _check_times(values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, datetime):
            cv.aware(value, key)
