"""SQL sources: a query's result streamed in batches to Parquet, types kept, errors explained."""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow.parquet as pq
import pytest
from sqlalchemy.engine import make_url

from conveyor.data.sources import SqlTableSource
from conveyor.errors import BackendUnavailableError, SourceError
from conveyor.spec import SqlSource

ROWS = 50_000


def source(url: str, query: str, project: Path, **kwargs: Any) -> SqlTableSource:
    return SqlTableSource(
        "orders", SqlSource(type="sql", url=url, query=query), project_root=project, **kwargs
    )


def types(con: duckdb.DuckDBPyConnection, name: str = "orders") -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute(f'DESCRIBE "{name}"').fetchall()}


@pytest.fixture(scope="module")
def pg_orders(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL table of 50k rows with ints, floats, numerics, text, times and NULLs."""
    dsn = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS source_orders")
        conn.execute(
            f"""
            CREATE TABLE source_orders AS
            SELECT i AS id,
                   (i % 7)::int AS qty,
                   i * 0.5::float8 AS amount,
                   (i % 100)::numeric(10, 2) / 4 AS price,
                   CASE WHEN i % 10 = 0 THEN NULL ELSE 'item ' || i END AS label,
                   TIMESTAMP '2024-01-01' + i * INTERVAL '1 minute' AS created,
                   TIMESTAMPTZ '2024-01-01 00:00:00+00' + i * INTERVAL '1 second' AS seen,
                   DATE '2024-01-01' + (i % 365) AS day,
                   i % 2 = 0 AS even,
                   CASE WHEN i > 15000 THEN i END AS late
            FROM generate_series(1, {ROWS}) AS i
            """
        )
    yield postgres_url
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS source_orders")


@pytest.mark.integration
def test_postgres_rows_are_streamed_in_batches_with_types_kept(pg_orders, con, workdir, project):
    src = source(pg_orders, "SELECT * FROM source_orders ORDER BY id", project)
    src.register(con, workdir)

    staged = workdir / "orders.parquet"
    assert pq.ParquetFile(staged).metadata.num_row_groups == ROWS // 10_000  # one per batch
    assert types(con) == {
        "id": "BIGINT",
        "qty": "BIGINT",
        "amount": "DOUBLE",
        "price": "DOUBLE",
        "label": "VARCHAR",
        "created": "TIMESTAMP",
        "seen": "TIMESTAMP WITH TIME ZONE",
        "day": "DATE",
        "even": "BOOLEAN",
        "late": "BIGINT",  # NULL in the whole first batch: typed from PostgreSQL's int4
    }
    assert con.execute(
        "SELECT count(*), sum(id), sum(amount), count(label), count(late), min(created), "
        'max(epoch(seen))::BIGINT, sum(price) FROM "orders"'
    ).fetchone() == (
        ROWS,
        ROWS * (ROWS + 1) // 2,
        ROWS * (ROWS + 1) / 4,
        ROWS - ROWS // 10,
        ROWS - 15_000,
        dt.datetime(2024, 1, 1, 0, 1),
        int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()) + ROWS,
        sum((i % 100) / 4 for i in range(1, ROWS + 1)),
    )
    assert con.execute('SELECT label, day, even FROM "orders" WHERE id = 10').fetchone() == (
        None,
        dt.date(2024, 1, 11),
        True,
    )
    assert (
        "read_parquet"
        in con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'orders'").fetchone()[0]
    )


@pytest.mark.integration
def test_postgres_small_batches(pg_orders, con, workdir, project):
    src = source(
        pg_orders, "SELECT id FROM source_orders WHERE id <= 2500", project, batch_size=1000
    )
    src.register(con, workdir)
    assert pq.ParquetFile(workdir / "orders.parquet").metadata.num_row_groups == 3
    assert con.execute('SELECT count(*), max(id) FROM "orders"').fetchone() == (2500, 2500)


@pytest.mark.integration
def test_postgres_empty_result_keeps_the_columns(pg_orders, con, workdir, project):
    query = "SELECT id, amount, label, created, seen FROM source_orders WHERE id < 0"
    source(pg_orders, query, project).register(con, workdir)
    assert con.execute('SELECT count(*) FROM "orders"').fetchone() == (0,)
    assert types(con) == {
        "id": "BIGINT",
        "amount": "DOUBLE",
        "label": "VARCHAR",
        "created": "TIMESTAMP",
        "seen": "TIMESTAMP WITH TIME ZONE",
    }


@pytest.mark.integration
def test_postgres_query_text_is_sent_as_written(pg_orders, con, workdir, project):
    """No bind parameters: ':x', '::' casts and '%' reach the database untouched."""
    query = "SELECT ':x' AS colon, 'a%b' AS pct, 7 % 3 AS modulo, '{\"k\":1}'::jsonb AS doc"
    source(pg_orders, query, project).register(con, workdir)
    assert con.execute('SELECT * FROM "orders"').fetchone() == (":x", "a%b", 1, '{"k": 1}')


@pytest.mark.integration
def test_postgres_syntax_error_has_the_database_message(pg_orders, con, workdir, project):
    with pytest.raises(SourceError) as caught:
        source(pg_orders, "SELECT * FROMM source_orders", project).register(con, workdir)
    message = str(caught.value)
    assert message.startswith("source 'orders': the query failed on 'postgresql+psycopg://")
    assert message.split(": ", 2)[2].startswith('syntax error at or near "FROMM"; fix')
    assert "fix the `query:`" in message
    assert not (workdir / "orders.parquet").exists()
    assert list(workdir.iterdir()) == []  # the staging file is gone too


@pytest.mark.integration
def test_postgres_error_mid_stream_is_a_source_error(pg_orders, con, workdir, project):
    query = "SELECT id, 1 / (id - 25000) AS boom FROM source_orders ORDER BY id"
    with pytest.raises(SourceError, match=r"source 'orders'.*division by zero"):
        source(pg_orders, query, project).register(con, workdir)
    assert list(workdir.iterdir()) == []


def test_unreachable_database_names_the_url_without_password(con, workdir, project):
    url = "postgresql+psycopg://reader:s3cret-pw@127.0.0.1:1/shop"
    with pytest.raises(SourceError) as caught:
        source(url, "SELECT 1", project).register(con, workdir)
    message = str(caught.value)
    assert (
        "source 'orders': cannot connect to 'postgresql+psycopg://reader:***@127.0.0.1:1/shop'"
        in message
    )
    assert "s3cret-pw" not in message
    assert "check that the database is running" in message


def test_missing_driver_names_the_extra(project, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    with pytest.raises(BackendUnavailableError, match=r"pip install 'conveyor-ml\[postgres\]'"):
        source("postgresql+psycopg://u:pw@db/x", "SELECT 1", project)


def test_missing_third_party_driver_names_the_package(project):
    with pytest.raises(BackendUnavailableError, match=r"source 'orders'.*pip install pymysql"):
        source("mysql+pymysql://u:pw@db/x", "SELECT 1", project)


def test_unknown_dialect(project):
    with pytest.raises(BackendUnavailableError, match=r"no dialect for 'nosuchdb'"):
        source("nosuchdb://u:pw@db/x", "SELECT 1", project)


def test_malformed_url(project):
    with pytest.raises(SourceError, match=r"source 'orders': 'not a url' is not a database URL"):
        source("not a url", "SELECT 1", project)


@pytest.fixture
def sqlite_db(project: Path) -> Path:
    path = project / "data" / "shop.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE items (id INTEGER, price NUMERIC, name TEXT, note TEXT)")
        db.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?)",
            [
                (i, i if i % 2 else i + 0.5, f"n{i}", None if i < 150 else f"x{i}")
                for i in range(300)
            ],
        )
    return path


def test_sqlite_relative_path_is_relative_to_the_project(sqlite_db, con, workdir, project):
    src = source(
        "sqlite:///data/shop.db", "SELECT * FROM items ORDER BY id", project, batch_size=100
    )
    src.register(con, workdir)
    # price mixes integers and reals (SQLite's NUMERIC affinity): float. note is NULL in the
    # whole first batch and SQLite declares no types: text.
    assert types(con) == {"id": "BIGINT", "price": "DOUBLE", "name": "VARCHAR", "note": "VARCHAR"}
    assert con.execute('SELECT count(*), sum(price), count(note) FROM "orders"').fetchone() == (
        300,
        sum(i if i % 2 else i + 0.5 for i in range(300)),
        150,
    )
    assert pq.ParquetFile(workdir / "orders.parquet").metadata.num_row_groups == 3


def test_sqlite_column_changing_type_between_batches(sqlite_db, con, workdir, project):
    with sqlite3.connect(sqlite_db) as db:
        db.execute("UPDATE items SET price = 'n/a' WHERE id = 250")
    src = source(
        f"sqlite:///{sqlite_db}", "SELECT id, price FROM items ORDER BY id", project, batch_size=100
    )
    with pytest.raises(SourceError) as caught:
        src.register(con, workdir)
    assert str(caught.value) == (
        "source 'orders': column 'price' changed type at row 251: earlier rows made it double, "
        "but this row holds a str ('n/a'); CAST the column in the query so every row has one type"
    )


def test_duplicate_column_names(sqlite_db, con, workdir, project):
    query = "SELECT a.id, b.id FROM items a JOIN items b ON a.id = b.id"
    with pytest.raises(SourceError, match=r"several columns named id; give them distinct aliases"):
        source("sqlite:///data/shop.db", query, project).register(con, workdir)


def test_register_again_replaces_the_staged_result(sqlite_db, con, workdir, project):
    src = source("sqlite:///data/shop.db", "SELECT count(*) AS n FROM items", project)
    src.register(con, workdir)
    with sqlite3.connect(sqlite_db) as db:
        db.execute("DELETE FROM items WHERE id >= 100")
    src.register(con, workdir)
    assert con.execute('SELECT n FROM "orders"').fetchall() == [(100,)]
    assert sorted(path.name for path in workdir.iterdir()) == ["orders.parquet"]
    assert src.files() == []


@pytest.mark.integration
def test_postgres_other_types(pg_orders, con, workdir, project):
    query = """
        SELECT INTERVAL '1 day 2 seconds' AS span, 'ab'::bytea AS raw,
               '6f1c1e0e-0000-4000-8000-000000000001'::uuid AS uid, TIME '12:30:00' AS at,
               '[1, {"a": null}]'::jsonb AS doc, 12345678901234::bigint AS big,
               NULL::numeric AS nothing
    """
    source(pg_orders, query, project).register(con, workdir)
    assert types(con) == {
        "span": "DOUBLE",  # seconds
        "raw": "BLOB",
        "uid": "VARCHAR",
        "at": "TIME",
        "doc": "VARCHAR",  # JSON text
        "big": "BIGINT",
        "nothing": "DOUBLE",
    }
    assert con.execute('SELECT * FROM "orders"').fetchone() == (
        86402.0,
        b"ab",
        "6f1c1e0e-0000-4000-8000-000000000001",
        dt.time(12, 30),
        '[1, {"a": null}]',
        12345678901234,
        None,
    )
