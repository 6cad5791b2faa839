"""ORM mapping of the metadata store's tables.

This is the schema the code expects; ``migrations/`` is how a database gets there. A test
compares the two with Alembic's autogenerate, so a column added here without a migration fails
CI. Table names avoid ``runs``, ``alembic_version`` and the like because teams often share one
PostgreSQL database with MLflow and Optuna, which own those names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "ACTIVE_DEPLOYMENT_STATES",
    "AuditRow",
    "Base",
    "CacheRow",
    "DatasetVersionRow",
    "DeploymentEventRow",
    "DeploymentRow",
    "LeaseRow",
    "RunRow",
    "ServingStatsRow",
    "StepRunRow",
    "UtcDateTime",
]

# Deterministic constraint names, so migrations can refer to (and drop) them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that only accepts aware datetimes and always returns aware UTC ones.

    PostgreSQL stores ``timestamptz`` natively; SQLite has no time zones, so the value is
    stored as naive UTC and the zone is re-attached on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given; pass an aware one such as "
                "datetime.now(UTC)"
            )
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json() -> TypeEngine[Any]:
    # JSONB on PostgreSQL: compact, comparable, indexable; plain JSON (text) elsewhere.
    return JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base holding the store's metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RunRow(Base):
    __tablename__ = "pipeline_runs"
    __table_args__ = (Index(None, "project", "seq"),)

    # An integer sequence gives "newest first" the database's order, not the clocks' of the
    # machines that wrote the rows.
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    project: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)
    trigger: Mapped[str] = mapped_column(String)
    actor: Mapped[str] = mapped_column(String)
    hostname: Mapped[str] = mapped_column(String)
    pid: Mapped[int]
    spec_hash: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempt: Mapped[int]
    error: Mapped[str | None] = mapped_column(String)
    tags: Mapped[dict[str, str]] = mapped_column(_json())
    version: Mapped[int]


class StepRunRow(Base):
    __tablename__ = "step_runs"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    # The sequence keeps steps in insertion order.
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32), ForeignKey("pipeline_runs.id"))
    name: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)
    cache_key: Mapped[str | None] = mapped_column(String)
    code_version: Mapped[str | None] = mapped_column(String)
    config_hash: Mapped[str | None] = mapped_column(String)
    input_hashes: Mapped[dict[str, str]] = mapped_column(_json())
    output_hashes: Mapped[dict[str, str]] = mapped_column(_json())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duration_s: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int]
    error: Mapped[str | None] = mapped_column(String)


class CacheRow(Base):
    __tablename__ = "step_cache"

    cache_key: Mapped[str] = mapped_column(String, primary_key=True)
    step: Mapped[str] = mapped_column(String)
    outputs: Mapped[dict[str, str]] = mapped_column(_json())
    run_id: Mapped[str] = mapped_column(String(32), ForeignKey("pipeline_runs.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DatasetVersionRow(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (Index(None, "name", "seq"),)

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String, unique=True)
    name: Mapped[str] = mapped_column(String)
    sha256: Mapped[str] = mapped_column(String)
    row_count: Mapped[int] = mapped_column(BigInteger)  # data sets can pass 2**31 rows
    schema: Mapped[dict[str, Any]] = mapped_column(_json())
    source: Mapped[dict[str, Any]] = mapped_column(_json())
    parents: Mapped[list[str]] = mapped_column(_json())
    run_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("pipeline_runs.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    artifacts: Mapped[dict[str, str]] = mapped_column(_json(), server_default="{}")
    stats: Mapped[dict[str, Any]] = mapped_column(_json(), server_default="{}")


class AuditRow(Base):
    """Append-only: the initial migration installs triggers that reject UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "target", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String)
    target: Mapped[str] = mapped_column(String)
    reason: Mapped[str] = mapped_column(String)
    details: Mapped[dict[str, Any]] = mapped_column(_json())


ACTIVE_DEPLOYMENT_STATES: Final = ("pending", "rolling", "paused")
"""States of a deployment in progress; a project has at most one deployment in them."""

_ACTIVE_ONLY = text("state IN ('pending', 'rolling', 'paused')")


class DeploymentRow(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        Index(None, "project", "seq"),
        # A partial unique index makes "one active deployment per project" hold even when two
        # processes create one at the same moment; both backends support it.
        Index(
            "uq_deployments_active_project",
            "project",
            unique=True,
            sqlite_where=_ACTIVE_ONLY,
            postgresql_where=_ACTIVE_ONLY,
        ),
    )

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    project: Mapped[str] = mapped_column(String)
    champion_version: Mapped[int]
    challenger_version: Mapped[int | None]
    policy: Mapped[str] = mapped_column(String)
    config: Mapped[dict[str, Any]] = mapped_column(_json())
    weights: Mapped[dict[str, float]] = mapped_column(_json())  # JSON keys are strings
    shadow_version: Mapped[int | None]
    shadow_rate: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String)
    step: Mapped[int]
    step_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String)
    reason: Mapped[str] = mapped_column(String)
    version: Mapped[int]


class DeploymentEventRow(Base):
    """Append-only: migration 0003 installs triggers that reject UPDATE and DELETE."""

    __tablename__ = "deployment_events"
    __table_args__ = (Index(None, "deployment_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    deployment_id: Mapped[str] = mapped_column(String(32), ForeignKey("deployments.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String)
    actor: Mapped[str] = mapped_column(String)
    reason: Mapped[str] = mapped_column(String)
    from_state: Mapped[str | None] = mapped_column(String)
    to_state: Mapped[str] = mapped_column(String)
    weights: Mapped[dict[str, float]] = mapped_column(_json())
    metrics: Mapped[dict[str, Any]] = mapped_column(_json())


class ServingStatsRow(Base):
    """Counts of one replica for one version in one window; flushes add to them."""

    __tablename__ = "serving_stats"

    # Key order serves the one query: a project's windows in a time range.
    project: Mapped[str] = mapped_column(String, primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    model_version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    shadow: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    replica: Mapped[str] = mapped_column(String, primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    latency_counts: Mapped[list[int]] = mapped_column(_json())
    latency_ms_sum: Mapped[float] = mapped_column(Float)
    score_counts: Mapped[list[int]] = mapped_column(_json())
    n_scores: Mapped[int] = mapped_column(BigInteger)
    compared: Mapped[int] = mapped_column(BigInteger)
    agreed: Mapped[int] = mapped_column(BigInteger)
    abs_diff_sum: Mapped[float] = mapped_column(Float)
    outcome_n: Mapped[int] = mapped_column(BigInteger)
    outcome_sum: Mapped[float] = mapped_column(Float)
    outcome_sum_sq: Mapped[float] = mapped_column(Float)


class LeaseRow(Base):
    """A named lock with an expiry, e.g. the one that makes a single controller act."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String, primary_key=True)
    holder: Mapped[str] = mapped_column(String)
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MonitorRunRow(Base):
    """One monitoring pass (a drift window, a live-quality computation)."""

    __tablename__ = "monitor_runs"
    __table_args__ = (Index(None, "project", "kind", "seq"),)

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    project: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    model_version: Mapped[int | None]
    window_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    rows: Mapped[int] = mapped_column(BigInteger)
    flagged: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float | None] = mapped_column(Float)
    summary: Mapped[dict[str, Any]] = mapped_column(_json())
    artifacts: Mapped[dict[str, str]] = mapped_column(_json())


class AlertRow(Base):
    """An alert rule's state for one subject: firing or resolved, and when it last notified."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("project", "rule", "subject"),)

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    project: Mapped[str] = mapped_column(String)
    rule: Mapped[str] = mapped_column(String)
    event: Mapped[str] = mapped_column(String)
    subject: Mapped[str] = mapped_column(String)
    state: Mapped[str] = mapped_column(String)
    first_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    count: Mapped[int]
    payload: Mapped[dict[str, Any]] = mapped_column(_json())


class RetrainTriggerRow(Base):
    """Why a retraining run was started, and what became of it."""

    __tablename__ = "retrain_triggers"
    __table_args__ = (Index(None, "project", "seq"),)

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    project: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)
    reason: Mapped[str] = mapped_column(String)
    details: Mapped[dict[str, Any]] = mapped_column(_json())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String)
    run_id: Mapped[str | None] = mapped_column(String)
    model_version: Mapped[int | None]
    deployment_id: Mapped[str | None] = mapped_column(String(32))
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    message: Mapped[str | None] = mapped_column(String)
