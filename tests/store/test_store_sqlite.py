"""SQLite specifics: the connection settings that make one file safe for several processes."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from conveyor.store import MetadataStore
from conveyor.store._engine import build_engine


def test_connections_use_wal_busy_timeout_and_foreign_keys(
    backend_url: Callable[..., str],
) -> None:
    engine = build_engine(backend_url("sqlite"))
    try:
        with engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            }
    finally:
        engine.dispose()
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 30_000, "foreign_keys": 1}


def test_switching_to_wal_waits_for_another_process_initialising_the_file(
    backend_url: Callable[..., str],
) -> None:
    # SQLite fails the WAL switch at once, without the busy handler, while another connection
    # holds the write lock of a file still in rollback-journal mode (first use by several
    # processes at the same moment): the engine must wait, not fail with "database is locked".
    url = backend_url("sqlite", fresh=True)
    path = Path(url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE held (x)")
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    engine = build_engine(url)
    try:
        started = time.monotonic()
        with engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        waited = time.monotonic() - started
    finally:
        release.join()
        engine.dispose()
        other.close()
    assert mode == "wal"
    assert waited >= 0.2


def test_readers_do_not_wait_for_a_writer(backend_url: Callable[..., str]) -> None:
    url = backend_url("sqlite")
    with MetadataStore(url) as store:
        run = store.create_run(project="p", spec_hash="s", actor="a", hostname="h", pid=1)
        writer = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
            started = time.monotonic()
            assert store.get_run(run.id) == run
            assert store.list_runs() == [run]
            assert time.monotonic() - started < 5  # a locked read would wait 30 s
        finally:
            writer.execute("ROLLBACK")
            writer.close()
