"""The immutable records the metadata store returns, and the enums they use.

Records are frozen dataclasses built fresh for every call: no ORM object, session or shared
mutable state ever leaves the store, so callers may keep them across threads and processes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

__all__ = [
    "UNSET",
    "AuditEntry",
    "CacheEntry",
    "DatasetVersionRecord",
    "RunRecord",
    "RunStatus",
    "StepRunRecord",
    "StepStatus",
    "Unset",
]


class RunStatus(enum.StrEnum):
    """Lifecycle of a pipeline run."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class StepStatus(enum.StrEnum):
    """Lifecycle of one step inside a run."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    CACHED = "cached"
    REUSED = "reused"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"


class Unset(enum.Enum):
    """Type of :data:`UNSET`, the default of optional update arguments.

    ``None`` is a meaningful value for several fields (``error=None`` clears an error), so
    "leave this field alone" needs its own marker.
    """

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One pipeline run.

    Attributes:
        id: 32 lowercase hex characters (a uuid4); any unique prefix of 4+ characters finds it.
        project: Name of the project the run belongs to.
        status: Where the run is in its lifecycle.
        trigger: What started it (``manual``, ``schedule``, ``drift``, ...).
        actor: Who started it.
        hostname: Machine the run's process lives on.
        pid: Process id of the run's process on ``hostname``.
        spec_hash: Hash of the spec the run executes.
        created_at: When the run was created (aware, UTC).
        finished_at: When it reached a final status (aware, UTC), or ``None``.
        heartbeat_at: Last sign of life from the run's process (aware, UTC).
        attempt: 1 for the first execution, +1 per resume.
        error: Why the run failed or was interrupted, or ``None``.
        tags: Free-form string labels.
        version: Optimistic-lock counter: 1 at creation, +1 on every change.
    """

    id: str
    project: str
    status: RunStatus
    trigger: str
    actor: str
    hostname: str
    pid: int
    spec_hash: str
    created_at: datetime
    finished_at: datetime | None
    heartbeat_at: datetime
    attempt: int
    error: str | None
    tags: dict[str, str]
    version: int


@dataclass(frozen=True, slots=True)
class StepRunRecord:
    """One step of one run; ``(run_id, name)`` is unique.

    Attributes:
        run_id: The run this step belongs to.
        name: Step name, unique within the run.
        status: Where the step is in its lifecycle.
        cache_key: Key of the step cache entry it produced or reused.
        code_version: Hash of the step's code.
        config_hash: Hash of the step's configuration.
        input_hashes: Input name to content hash.
        output_hashes: Output name to content hash.
        started_at: When the step started (aware, UTC).
        finished_at: When the step ended (aware, UTC).
        duration_s: Wall-clock seconds the step took.
        attempts: How many times the step was executed in this run.
        error: Why the step failed, or ``None``.
    """

    run_id: str
    name: str
    status: StepStatus
    cache_key: str | None
    code_version: str | None
    config_hash: str | None
    input_hashes: dict[str, str]
    output_hashes: dict[str, str]
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    attempts: int
    error: str | None


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A step's outputs, keyed by the hash of everything that determines them.

    Attributes:
        cache_key: Hash of the step's code version, configuration and inputs.
        step: Name of the step that produced the outputs.
        outputs: Output name to content hash.
        run_id: The run that first produced them.
        created_at: When the entry was written (aware, UTC).
    """

    cache_key: str
    step: str
    outputs: dict[str, str]
    run_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DatasetVersionRecord:
    """An immutable, content-addressed snapshot of a data set.

    Attributes:
        id: Caller-chosen identifier (usually derived from ``sha256``).
        name: Name of the data set.
        sha256: Digest of the snapshot's bytes.
        row_count: Number of rows.
        schema: Column names to types, as JSON.
        source: Where the data came from, as JSON.
        parents: Ids of the dataset versions it was derived from.
        run_id: The run that produced it, if any.
        created_at: When it was recorded (aware, UTC).
        artifacts: Named artifact digests: the data itself, and e.g. its quarantine file and
            validation reports.
        stats: Numbers worth keeping with the version (e.g. validation counts).
    """

    id: str
    name: str
    sha256: str
    row_count: int
    schema: dict[str, Any]
    source: dict[str, Any]
    parents: list[str]
    run_id: str | None
    created_at: datetime
    artifacts: dict[str, str] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the append-only audit log: who did what to which target, and why.

    Attributes:
        id: Increasing sequence number.
        at: When it happened (aware, UTC).
        actor: Who did it.
        action: What was done (``deploy``, ``promote``, ``rollback``, ...).
        target: What it was done to.
        reason: Why, in the actor's words.
        details: Extra structured context, as JSON.
    """

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    reason: str
    details: dict[str, Any]
