"""Monitoring runs, alerts and retraining triggers.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the three tables and their indexes."""
    op.create_table(
        "monitor_runs",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        _timestamp("created_at"),
        sa.Column("model_version", sa.Integer(), nullable=True),
        _timestamp("window_start", nullable=True),
        _timestamp("window_end", nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("summary", _json(), nullable=False),
        sa.Column("artifacts", _json(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_monitor_runs"),
        sa.UniqueConstraint("id", name="uq_monitor_runs_id"),
    )
    op.create_index("ix_monitor_runs_project_kind_seq", "monitor_runs", ["project", "kind", "seq"])

    op.create_table(
        "alerts",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        _timestamp("first_at"),
        _timestamp("last_at"),
        _timestamp("resolved_at", nullable=True),
        _timestamp("notified_at", nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_alerts"),
        sa.UniqueConstraint("id", name="uq_alerts_id"),
        sa.UniqueConstraint("project", "rule", "subject", name="uq_alerts_project_rule_subject"),
    )

    op.create_table(
        "retrain_triggers",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("details", _json(), nullable=False),
        _timestamp("created_at"),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("deployment_id", sa.String(length=32), nullable=True),
        _timestamp("finished_at", nullable=True),
        sa.Column("message", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_retrain_triggers"),
        sa.UniqueConstraint("id", name="uq_retrain_triggers_id"),
    )
    op.create_index("ix_retrain_triggers_project_seq", "retrain_triggers", ["project", "seq"])


def downgrade() -> None:
    """Drop everything :func:`upgrade` created."""
    op.drop_index("ix_retrain_triggers_project_seq", table_name="retrain_triggers")
    op.drop_table("retrain_triggers")
    op.drop_table("alerts")
    op.drop_index("ix_monitor_runs_project_kind_seq", table_name="monitor_runs")
    op.drop_table("monitor_runs")
