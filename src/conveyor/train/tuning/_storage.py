"""Optuna's RDB storage in the metadata store's database, and a lock over the trial budget.

Optuna's tables (``studies``, ``trials``, ... and its ``alembic_version``) live next to
Conveyor's, whose migrations use ``conveyor_alembic_version``, so both schemas coexist in
one SQLite file or PostgreSQL database.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from conveyor.errors import BackendUnavailableError

if TYPE_CHECKING:
    import optuna
    from sqlalchemy import Engine

__all__ = ["BudgetLock", "open_storage"]

SQLITE_TIMEOUT_S: Final = 60
"""How long a worker waits for SQLite's write lock before failing."""
HEARTBEAT_S: Final = 10
"""Running trials record a heartbeat this often."""
GRACE_S: Final = 60
"""A running trial without a heartbeat for this long belonged to a dead worker: it is failed
and queued again (at most ``MAX_RETRY`` times)."""
MAX_RETRY: Final = 2


def _sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at ``url``, with heartbeats that requeue a dead worker's trials.

    SQLite waits up to ``SQLITE_TIMEOUT_S`` for locks held by parallel workers; its folder is
    created if needed.

    Raises:
        BackendUnavailableError: The database cannot be opened or its driver is missing.
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    path = _sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _use_wal(path)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    retry_class = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    retry_kwargs: dict[str, Any]
    with warnings.catch_warnings():
        # Heartbeats and the retry callback are marked experimental since Optuna 2.8/2.9.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if retry_class is not None:  # Optuna >= 4.9
            retry_kwargs = {"heartbeat_stale_trial_callback": retry_class(max_retry=MAX_RETRY)}
        else:
            retry = optuna.storages.RetryFailedTrialCallback(max_retry=MAX_RETRY)
            retry_kwargs = {"failed_trial_callback": retry}
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S,
                **retry_kwargs,
            )
        except (SQLAlchemyError, ImportError) as err:
            from conveyor.store._engine import redact

            raise BackendUnavailableError(
                f"cannot open the Optuna storage at {redact(url)}: {err}; check the database "
                "URL (settings.db_url or model.tune.storage_url) and that the server is up"
            ) from err


def _use_wal(path: Path) -> None:
    """Switch the SQLite file to write-ahead logging, as the metadata store does.

    WAL lets workers read while one writes, and makes each of the many small commits of a
    study (one per reported iteration) cheap. The mode is stored in the file.
    """
    import sqlite3

    connection = sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


class BudgetLock:
    """A lock, shared by every worker on every machine, around "count trials, queue one".

    PostgreSQL: a session advisory lock keyed by the study name. SQLite: ``flock`` on a
    ``<database>.tune-lock`` file next to the database (SQLite itself cannot be shared
    between machines). Other databases: no lock, so parallel workers may start a few trials
    beyond the budget; those are failed as surplus instead of run.
    """

    def __init__(self, url: str, study_name: str) -> None:
        from sqlalchemy.engine import make_url

        self._sqlite = _sqlite_path(url)
        self._engine: Engine | None = None
        digest = hashlib.sha256(f"conveyor-tune:{study_name}".encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)
        if self._sqlite is None and make_url(url).get_backend_name() == "postgresql":
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            self._engine = create_engine(url, poolclass=NullPool)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock for the ``with`` block."""
        if self._sqlite is not None:
            yield from _flock(self._sqlite.with_name(self._sqlite.name + ".tune-lock"))
        elif self._engine is not None:
            from sqlalchemy import text

            with self._engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": self._key})
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
                    conn.commit()
        else:
            yield

    def close(self) -> None:
        """Release the database connection pool."""
        if self._engine is not None:
            self._engine.dispose()


def _flock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: a single machine, and Optuna's own locking must do
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
