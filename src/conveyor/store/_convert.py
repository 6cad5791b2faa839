"""Input checks and row-to-record conversion, kept apart from the store's SQL."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.errors import RecordNotFoundError

from ._records import (
    AuditEntry,
    CacheEntry,
    DatasetVersionRecord,
    RunRecord,
    RunStatus,
    StepRunRecord,
    StepStatus,
)
from ._tables import AuditRow, CacheRow, DatasetVersionRow, DeploymentRow, RunRow, StepRunRow

MIN_PREFIX: Final = 4
_Row = TypeVar("_Row", RunRow, DatasetVersionRow, DeploymentRow)


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def str_map(value: Mapping[str, str], what: str) -> dict[str, str]:
    """Copy a string-to-string mapping, rejecting anything else with a clear message."""
    copied = dict(value)
    bad = [
        key for key, item in copied.items() if not isinstance(key, str) or not isinstance(item, str)
    ]
    if bad:
        raise TypeError(f"{what} must map strings to strings; bad entries: {bad[:5]!r}")
    return copied


def json_value(value: Any, what: str) -> Any:
    """Return ``value`` as it will read back from the database (tuples become lists, ...)."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what} must be JSON-serializable: {err}") from err


def aware(value: datetime | None, what: str) -> None:
    """Reject naive datetimes: the store only deals in unambiguous instants."""
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(
            f"{what} must be timezone-aware, got naive {value.isoformat()}; "
            "use for example datetime.now(UTC)"
        )


def positive_limit(limit: int) -> int:
    """Reject a non-positive ``limit``."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return limit


def by_prefix(session: Session, model: type[_Row], ident: str, kind: str) -> _Row:
    """Find the row whose id is ``ident`` or starts with it, the way git resolves commits.

    Raises:
        RecordNotFoundError: Nothing matches, the prefix is ambiguous, or shorter than 4.
    """
    exact = session.scalars(select(model).where(model.id == ident)).one_or_none()
    if exact is not None:
        return exact
    if len(ident) < MIN_PREFIX:
        raise RecordNotFoundError(
            f"no {kind} with id {ident!r}; a prefix needs at least {MIN_PREFIX} characters"
        )
    query = select(model).where(model.id.startswith(ident, autoescape=True)).limit(6)
    matches = [row.id for row in session.scalars(query)]
    if not matches:
        raise RecordNotFoundError(f"no {kind} with id or id prefix {ident!r}")
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise RecordNotFoundError(
            f"{kind} id prefix {ident!r} is ambiguous, it matches {shown}; give more characters"
        )
    return session.scalars(select(model).where(model.id == matches[0])).one()


def run_record(row: RunRow) -> RunRecord:
    """Detach a run row into an immutable record."""
    return RunRecord(
        id=row.id,
        project=row.project,
        status=RunStatus(row.status),
        trigger=row.trigger,
        actor=row.actor,
        hostname=row.hostname,
        pid=row.pid,
        spec_hash=row.spec_hash,
        created_at=row.created_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        attempt=row.attempt,
        error=row.error,
        tags=dict(row.tags),
        version=row.version,
    )


def step_run_record(row: StepRunRow) -> StepRunRecord:
    """Detach a step-run row into an immutable record."""
    return StepRunRecord(
        run_id=row.run_id,
        name=row.name,
        status=StepStatus(row.status),
        cache_key=row.cache_key,
        code_version=row.code_version,
        config_hash=row.config_hash,
        input_hashes=dict(row.input_hashes),
        output_hashes=dict(row.output_hashes),
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_s=row.duration_s,
        attempts=row.attempts,
        error=row.error,
    )


def cache_entry(row: CacheRow) -> CacheEntry:
    """Detach a step-cache row into an immutable record."""
    return CacheEntry(
        cache_key=row.cache_key,
        step=row.step,
        outputs=dict(row.outputs),
        run_id=row.run_id,
        created_at=row.created_at,
    )


def dataset_version_record(row: DatasetVersionRow) -> DatasetVersionRecord:
    """Detach a dataset-version row into an immutable record."""
    return DatasetVersionRecord(
        id=row.id,
        name=row.name,
        sha256=row.sha256,
        row_count=row.row_count,
        schema=json_value(row.schema, "schema"),  # a deep copy: nested values are mutable too
        source=json_value(row.source, "source"),
        parents=list(row.parents),
        run_id=row.run_id,
        created_at=row.created_at,
        artifacts=dict(row.artifacts),
        stats=json_value(row.stats, "stats"),
    )


def audit_entry(row: AuditRow) -> AuditEntry:
    """Detach an audit-log row into an immutable record."""
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        reason=row.reason,
        details=json_value(row.details, "details"),
    )
