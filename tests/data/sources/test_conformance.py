"""Every source backend, built by build_source, turns the same data into the same DuckDB view."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from conveyor.data.sources import (
    BaseSource,
    FileTableSource,
    HttpJsonSource,
    SqlTableSource,
    build_source,
)
from conveyor.spec import FileSource, HttpSource, SqlSource

ROWS = [(1, "a", 0.5), (2, None, 1.5), (3, "c", None)]
RECORDS = [{"id": i, "name": n, "score": s} for i, n, s in ROWS]
NAME = "my-source"

Make = Callable[[], tuple[BaseSource[Any], dict[str, Any]]]


def _csv(project: Path, request: pytest.FixtureRequest) -> tuple[Any, type]:
    lines = ["id,name,score"] + [",".join("" if v is None else str(v) for v in row) for row in ROWS]
    (project / "rows.csv").write_text("\n".join(lines) + "\n")
    return FileSource(type="file", path="rows.csv"), FileTableSource


def _ndjson(project: Path, request: pytest.FixtureRequest) -> tuple[Any, type]:
    text = "".join(json.dumps(record) + "\n" for record in RECORDS)
    (project / "rows.ndjson").write_text(text)
    return FileSource(type="file", path="rows.ndjson"), FileTableSource


def _sqlite(project: Path, request: pytest.FixtureRequest) -> tuple[Any, type]:
    with sqlite3.connect(project / "rows.db") as db:
        db.execute("CREATE TABLE t (id INTEGER, name TEXT, score REAL)")
        db.executemany("INSERT INTO t VALUES (?, ?, ?)", ROWS)
    query = "SELECT * FROM t ORDER BY id"
    return SqlSource(type="sql", url="sqlite:///rows.db", query=query), SqlTableSource


def _postgresql(project: Path, request: pytest.FixtureRequest) -> tuple[Any, type]:
    url: str = request.getfixturevalue("postgres_url")
    dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS conformance_rows")
        conn.execute("CREATE TABLE conformance_rows (id int, name text, score float8)")
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO conformance_rows VALUES (%s, %s, %s)", ROWS)
    query = "SELECT * FROM conformance_rows ORDER BY id"
    return SqlSource(type="sql", url=url, query=query), SqlTableSource


def _http(project: Path, request: pytest.FixtureRequest) -> tuple[Any, type]:
    api = request.getfixturevalue("api")
    api.route("/rows")(lambda r: (200, {}, {"data": RECORDS}))
    return HttpSource(type="http", url=api.url("/rows"), records="data"), HttpJsonSource


BACKENDS = {
    "csv": _csv,
    "ndjson": _ndjson,
    "sqlite": _sqlite,
    "postgresql": _postgresql,
    "http": _http,
}


@pytest.fixture(
    params=[
        pytest.param(name, marks=[pytest.mark.integration] if name == "postgresql" else [])
        for name in BACKENDS
    ]
)
def built(request: pytest.FixtureRequest, project: Path) -> tuple[BaseSource[Any], type]:
    config, expected_class = BACKENDS[request.param](project, request)
    return build_source(NAME, config, project_root=project), expected_class


def test_build_source_picks_the_backend(built):
    source, expected_class = built
    assert type(source) is expected_class
    assert source.name == NAME
    assert repr(source) == f"{expected_class.__name__}('{NAME}')"


def test_register_makes_the_same_view(built, con, workdir):
    source, _ = built
    source.register(con, workdir)
    views = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    assert views == [(NAME,)]
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)
    described = con.execute(f'DESCRIBE "{NAME}"').fetchall()
    assert [(row[0], row[1]) for row in described] == [
        ("id", "BIGINT"),
        ("name", "VARCHAR"),
        ("score", "DOUBLE"),
    ]
    assert con.execute(f'SELECT * FROM "{NAME}" ORDER BY id').fetchall() == ROWS


def test_register_twice_is_harmless(built, con, workdir):
    source, _ = built
    source.register(con, workdir)
    source.register(con, workdir)
    assert con.execute(f'SELECT count(*) FROM "{NAME}"').fetchone() == (3,)


def test_files_are_the_local_files_read(built, project):
    source, expected_class = built
    if expected_class is FileTableSource:
        assert source.files() == [project / source.config.path]
    else:
        assert source.files() == []


def test_invalid_names_are_rejected(project):
    config = FileSource(type="file", path="rows.csv")
    for bad in ("", "../escape", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="invalid source name"):
            FileTableSource(bad, config, project_root=project)
