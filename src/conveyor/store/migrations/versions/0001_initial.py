"""Initial schema: runs, step runs, step cache, dataset versions, append-only audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_AUDIT_MESSAGE = "audit_log is append-only: rows cannot be updated or deleted"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the tables and the triggers that keep the audit log append-only."""
    op.create_table(
        "pipeline_runs",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("hostname", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("spec_hash", sa.String(), nullable=False),
        _timestamp("created_at"),
        _timestamp("finished_at", nullable=True),
        _timestamp("heartbeat_at"),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_pipeline_runs"),
        sa.UniqueConstraint("id", name="uq_pipeline_runs_id"),
    )
    op.create_index("ix_pipeline_runs_project_seq", "pipeline_runs", ["project", "seq"])

    op.create_table(
        "step_runs",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("cache_key", sa.String(), nullable=True),
        sa.Column("code_version", sa.String(), nullable=True),
        sa.Column("config_hash", sa.String(), nullable=True),
        sa.Column("input_hashes", _json(), nullable=False),
        sa.Column("output_hashes", _json(), nullable=False),
        _timestamp("started_at", nullable=True),
        _timestamp("finished_at", nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.id"], name="fk_step_runs_run_id_pipeline_runs"
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_step_runs"),
        sa.UniqueConstraint("run_id", "name", name="uq_step_runs_run_id_name"),
    )

    op.create_table(
        "step_cache",
        sa.Column("cache_key", sa.String(), nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("outputs", _json(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.id"], name="fk_step_cache_run_id_pipeline_runs"
        ),
        sa.PrimaryKeyConstraint("cache_key", name="pk_step_cache"),
    )

    op.create_table(
        "dataset_versions",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("schema", _json(), nullable=False),
        sa.Column("source", _json(), nullable=False),
        sa.Column("parents", _json(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.id"], name="fk_dataset_versions_run_id_pipeline_runs"
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_dataset_versions"),
        sa.UniqueConstraint("id", name="uq_dataset_versions_id"),
    )
    op.create_index("ix_dataset_versions_name_seq", "dataset_versions", ["name", "seq"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _timestamp("at"),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("details", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_target_id", "audit_log", ["target", "id"])
    _create_audit_triggers()


def downgrade() -> None:
    """Drop everything :func:`upgrade` created."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE audit_log")  # drops its triggers too
        op.execute("DROP FUNCTION conveyor_audit_log_append_only()")
    else:
        op.drop_table("audit_log")
    op.drop_table("dataset_versions")
    op.drop_table("step_cache")
    op.drop_table("step_runs")
    op.drop_table("pipeline_runs")


def _create_audit_triggers() -> None:
    # Enforced in the database, not only in Python, so no client (another tool, a psql
    # session, a buggy migration) can rewrite history.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION conveyor_audit_log_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{_AUDIT_MESSAGE} (% refused)', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END;
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION conveyor_audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION conveyor_audit_log_append_only()"
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{operation.lower()} BEFORE {operation} "
                f"ON audit_log BEGIN SELECT RAISE(ABORT, '{_AUDIT_MESSAGE}'); END"
            )
