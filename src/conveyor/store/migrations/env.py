"""Alembic environment for Conveyor's metadata store.

Migrations run only through :class:`conveyor.store.MetadataStore`, which opens the transaction
(and the lock that serializes concurrent first use) and hands its connection over in
``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from conveyor.errors import MigrationError
from conveyor.store._migrate import VERSION_TABLE
from conveyor.store._tables import Base


def run_migrations() -> None:
    """Run the pending migrations on the connection given by the caller."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise MigrationError(
            "Conveyor's migrations run when a MetadataStore opens the database; "
            "open it with conveyor.store.MetadataStore(url) instead of the alembic command"
        )
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
