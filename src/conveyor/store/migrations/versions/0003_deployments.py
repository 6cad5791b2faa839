"""Deployments with their append-only event history, serving statistics and leases.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_EVENTS_MESSAGE = "deployment_events is append-only: rows cannot be updated or deleted"
_ACTIVE_ONLY = sa.text("state IN ('pending', 'rolling', 'paused')")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the four tables, the one-active-deployment index and the history triggers."""
    op.create_table(
        "deployments",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("champion_version", sa.Integer(), nullable=False),
        sa.Column("challenger_version", sa.Integer(), nullable=True),
        sa.Column("policy", sa.String(), nullable=False),
        sa.Column("config", _json(), nullable=False),
        sa.Column("weights", _json(), nullable=False),
        sa.Column("shadow_version", sa.Integer(), nullable=True),
        sa.Column("shadow_rate", sa.Float(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        _timestamp("step_started_at", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_deployments"),
        sa.UniqueConstraint("id", name="uq_deployments_id"),
    )
    op.create_index("ix_deployments_project_seq", "deployments", ["project", "seq"])
    op.create_index(
        "uq_deployments_active_project",
        "deployments",
        ["project"],
        unique=True,
        sqlite_where=_ACTIVE_ONLY,
        postgresql_where=_ACTIVE_ONLY,
    )

    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment_id", sa.String(length=32), nullable=False),
        _timestamp("at"),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("from_state", sa.String(), nullable=True),
        sa.Column("to_state", sa.String(), nullable=False),
        sa.Column("weights", _json(), nullable=False),
        sa.Column("metrics", _json(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name="fk_deployment_events_deployment_id_deployments",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_events"),
    )
    op.create_index(
        "ix_deployment_events_deployment_id_id", "deployment_events", ["deployment_id", "id"]
    )
    _create_event_triggers()

    op.create_table(
        "serving_stats",
        sa.Column("project", sa.String(), nullable=False),
        _timestamp("window_start"),
        sa.Column("model_version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("replica", sa.String(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("latency_counts", _json(), nullable=False),
        sa.Column("latency_ms_sum", sa.Float(), nullable=False),
        sa.Column("score_counts", _json(), nullable=False),
        sa.Column("n_scores", sa.BigInteger(), nullable=False),
        sa.Column("compared", sa.BigInteger(), nullable=False),
        sa.Column("agreed", sa.BigInteger(), nullable=False),
        sa.Column("abs_diff_sum", sa.Float(), nullable=False),
        sa.Column("outcome_n", sa.BigInteger(), nullable=False),
        sa.Column("outcome_sum", sa.Float(), nullable=False),
        sa.Column("outcome_sum_sq", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "project", "window_start", "model_version", "shadow", "replica", name="pk_serving_stats"
        ),
    )

    op.create_table(
        "leases",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=False),
        _timestamp("acquired_at"),
        _timestamp("expires_at"),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )


def downgrade() -> None:
    """Drop everything :func:`upgrade` created."""
    op.drop_table("leases")
    op.drop_table("serving_stats")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE deployment_events")  # drops its triggers too
        op.execute("DROP FUNCTION conveyor_deployment_events_append_only()")
    else:
        op.drop_table("deployment_events")  # drops its triggers too
    op.drop_index("uq_deployments_active_project", table_name="deployments")
    op.drop_index("ix_deployments_project_seq", table_name="deployments")
    op.drop_table("deployments")


def _create_event_triggers() -> None:
    # As for the audit log: the history that explains every decision must not be rewritten.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION conveyor_deployment_events_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{_EVENTS_MESSAGE} (% refused)', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END;
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER deployment_events_no_update_delete BEFORE UPDATE OR DELETE "
            "ON deployment_events FOR EACH ROW "
            "EXECUTE FUNCTION conveyor_deployment_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER deployment_events_no_truncate BEFORE TRUNCATE ON deployment_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION conveyor_deployment_events_append_only()"
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER deployment_events_no_{operation.lower()} BEFORE {operation} "
                f"ON deployment_events BEGIN SELECT RAISE(ABORT, '{_EVENTS_MESSAGE}'); END"
            )
