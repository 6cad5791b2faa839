"""Engines for the supported backends, and translation of driver errors into Conveyor's.

SQLite gets WAL, a 30 s busy timeout, foreign keys, and ``BEGIN IMMEDIATE`` for every
read-write transaction: the write lock is taken when the transaction starts, so read-modify-write
sequences from several processes queue up instead of losing updates or failing with
"database is locked" when a reader tries to upgrade its lock. Read-only transactions opt out
(``READ_ONLY`` execution option) and use a deferred ``BEGIN``, so readers never wait for writers.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.pool import ConnectionPoolEntry

from conveyor.errors import BackendUnavailableError, StoreError

__all__ = ["READ_ONLY", "build_engine", "describe", "redact", "translate_errors"]

READ_ONLY: Final = "conveyor_read_only"
"""Execution option marking a connection whose transactions never write."""

BUSY_TIMEOUT_S: Final = 30
_PG_CONNECT_TIMEOUT_S: Final = 10
_URL_HELP: Final = (
    "use sqlite:////absolute/path/conveyor.db or postgresql+psycopg://user:password@host:5432/db"
)
# SQLite reports most SQL mistakes as OperationalError too; only these mean the file is unusable.
_SQLITE_UNAVAILABLE: Final = re.compile(
    r"locked|busy|unable to open|readonly|read-only|disk i/o|disk is full|not a database"
)


def redact(url: str | URL) -> str:
    """Return ``url`` as text with its password replaced by ``***``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Unparseable: hide whatever sits between "user:" and "@".
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def build_engine(url: str) -> Engine:
    """Create the engine for ``url`` without connecting yet.

    Raises:
        StoreError: The URL is malformed or names an unsupported backend.
        BackendUnavailableError: The SQLite folder cannot be created or written, or the
            PostgreSQL driver is not installed.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise StoreError(f"invalid metadata store URL {redact(url)!r}: {_URL_HELP}") from err
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        return _postgres_engine(parsed)
    raise StoreError(
        f"unsupported metadata store backend {backend!r} in {redact(parsed)!r}: {_URL_HELP}"
    )


def _sqlite_engine(url: URL) -> Engine:
    if not url.database or url.database == ":memory:" or url.query.get("mode") == "memory":
        raise StoreError(
            f"the metadata store needs a database file, not {redact(url)!r}, so several "
            f"processes can share it: {_URL_HELP}"
        )
    path = Path(url.database).expanduser().absolute()
    _check_writable(path)
    engine = create_engine(url.set(database=str(path)), connect_args={"timeout": BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _check_writable(path: Path) -> None:
    folder = path.parent
    fix = "create it with write permission for this user, or point the store elsewhere"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BackendUnavailableError(
            f"cannot create the folder {folder} for the metadata store "
            f"({err.strerror or err}); {fix}"
        ) from err
    # SQLite also writes -wal and -shm files next to the database, so the folder must be writable.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BackendUnavailableError(
            f"the folder {folder} of the metadata store is not writable; "
            f"fix its permissions (chmod u+wx {folder}) or point the store elsewhere"
        )
    if path.is_dir() or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        raise BackendUnavailableError(
            f"the metadata store file {path} is not a readable and writable file; "
            "fix its permissions or point the store elsewhere"
        )


def _on_sqlite_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
    # Take transaction control away from the sqlite3 module (its legacy mode does not BEGIN
    # before SELECT), so the "begin" hook below decides how each transaction starts.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # Set the busy timeout first: switching to WAL needs a lock that another process
        # initialising the same new file may hold.
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL, much faster
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """Put the database in WAL mode, retrying while other processes initialise the same file.

    SQLite returns "database is locked" at once, without calling the busy handler, when two
    connections race to change the journal mode of a new file (the handler would deadlock),
    so the busy timeout alone does not cover concurrent first use.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _on_sqlite_begin(connection: Connection) -> None:
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


def _postgres_engine(url: URL) -> Engine:
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    try:
        return create_engine(
            url,
            pool_pre_ping=True,  # survive server restarts and idle-connection reaping
            connect_args={"connect_timeout": _PG_CONNECT_TIMEOUT_S, "application_name": "conveyor"},
        )
    except ImportError as err:
        raise BackendUnavailableError(
            f"the PostgreSQL driver for {redact(url)!r} is not installed ({err}); "
            "run: pip install 'conveyor-ml[postgres]'"
        ) from err


@contextmanager
def translate_errors(engine: Engine) -> Iterator[None]:
    """Re-raise SQLAlchemy errors raised inside the block as :class:`StoreError` subclasses.

    Conveyor's own errors pass through unchanged.
    """
    try:
        yield
    except StoreError:
        raise
    except SQLAlchemyError as err:
        where = redact(engine.url)
        detail = describe(err)
        if _is_unavailable(err, engine.dialect.name):
            hint = (
                f"check that the file is writable and that no process holds it locked for "
                f"more than {BUSY_TIMEOUT_S} s"
                if engine.dialect.name == "sqlite"
                else "check that the server is running and reachable from here, and the "
                "user, password and database name in the URL"
            )
            raise BackendUnavailableError(
                f"the metadata store at {where} cannot be used: {detail}; {hint}"
            ) from err
        raise StoreError(f"the metadata store at {where} failed: {detail}") from err


def describe(err: BaseException) -> str:
    """Return the driver's message for ``err`` on one line, without SQLAlchemy's SQL echo."""
    cause = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return " ".join(lines) or type(cause).__name__


def _is_unavailable(err: SQLAlchemyError, dialect: str) -> bool:
    if isinstance(err, DBAPIError) and err.connection_invalidated:
        return True
    if isinstance(err, InterfaceError):
        return True
    if not isinstance(err, OperationalError):
        return False
    return dialect != "sqlite" or bool(_SQLITE_UNAVAILABLE.search(str(err.orig).lower()))
