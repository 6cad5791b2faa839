"""Bring a database's schema to the version this code needs, safely under concurrency.

Opening a store first reads the stamped revision without any lock; only when it is not
:data:`HEAD` does it take the lock and run Alembic (configured in code, no ``alembic.ini``)
inside one transaction: SQLite's ``BEGIN IMMEDIATE`` holds the write lock, PostgreSQL takes a
transaction-scoped advisory lock. A process that loses the race waits, re-reads the revision,
finds it current and does nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from sqlalchemy import Connection, Engine, inspect, text

from conveyor.errors import MigrationError, StoreError

from ._engine import READ_ONLY, describe, redact, translate_errors

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD", "VERSION_TABLE", "alembic_config", "upgrade_to_head"]

HEAD: Final = "0004"
"""Newest revision in ``migrations/versions`` (a test keeps the two in step)."""

VERSION_TABLE: Final = "conveyor_alembic_version"
"""Conveyor's own version table: MLflow and Optuna already use ``alembic_version``."""

MIGRATIONS_DIR: Final = Path(__file__).with_name("migrations")
# Arbitrary, fixed key ("conv" in ASCII) shared by every Conveyor process.
_PG_LOCK_KEY: Final = 0x636F6E76


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an Alembic configuration for Conveyor's migrations.

    Args:
        connection: Connection the migration environment runs on, inside its transaction.
    """
    from alembic.config import Config  # Alembic (and Mako) load only when a schema changes

    config = Config()
    # The option goes through configparser interpolation, where "%" is special.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Upgrade the database behind ``engine`` to :data:`HEAD` unless it is there already.

    Raises:
        MigrationError: The database was created by a newer Conveyor, or a migration failed.
        BackendUnavailableError: The database cannot be reached.
    """
    with translate_errors(engine):
        with engine.execution_options(**{READ_ONLY: True}).connect() as connection:
            if _stamped(connection) == {HEAD}:
                return
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY}
                )
            _upgrade_locked(engine, connection)


def _stamped(connection: Connection) -> set[str]:
    if not inspect(connection).has_table(VERSION_TABLE):
        return set()
    return set(connection.scalars(text(f"SELECT version_num FROM {VERSION_TABLE}")))


def _upgrade_locked(engine: Engine, connection: Connection) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    current = _stamped(connection)  # again: another process may have upgraded meanwhile
    config = alembic_config(connection)
    script = ScriptDirectory.from_config(config)
    unknown = []
    for revision in sorted(current):
        try:
            script.get_revision(revision)
        except CommandError:
            unknown.append(revision)
    if unknown:
        raise MigrationError(
            f"the metadata store at {redact(engine.url)} has schema revision "
            f"{', '.join(unknown)}, which this version of Conveyor does not know: it was "
            "created or upgraded by a newer Conveyor. Upgrade conveyor "
            "(pip install --upgrade conveyor-ml) or use another store."
        )
    if current == set(script.get_heads()):
        return
    try:
        command.upgrade(config, "head")
    except StoreError:
        raise
    except Exception as err:
        start = ", ".join(sorted(current)) or "(empty)"
        raise MigrationError(
            f"upgrading the metadata store at {redact(engine.url)} from revision {start} "
            f"failed: {describe(err)}; the transaction was rolled back, so the database "
            "is unchanged"
        ) from err
