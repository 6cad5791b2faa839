"""Dataset versions carry their named artifacts (data, quarantine, reports) and statistics.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with op.batch_alter_table("dataset_versions") as batch:
        batch.add_column(sa.Column("artifacts", json, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("stats", json, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_column("stats")
        batch.drop_column("artifacts")
