"""A proposed `schema:` block loads as a valid spec and describes the profiled data."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from conveyor.data.profiling import TableProfile, profile_parquet, profile_relation, propose_schema
from conveyor.spec import ColumnType, SchemaSpec, parse_spec


def load(block: str) -> SchemaSpec:
    schema = parse_spec("name: x\n" + block, source="proposed.yaml").spec.schema_
    assert schema is not None
    return schema


@pytest.fixture(scope="module")
def flights(flights_parquet: Path) -> TableProfile:
    return profile_parquet(flights_parquet)


def test_flights_schema_loads_and_describes_the_data(flights: TableProfile) -> None:
    text = propose_schema(flights)
    assert text.startswith("# Inferred from 336,776 rows")
    assert "\nschema:\n  columns:\n" in text
    schema = load(text)
    assert list(schema.columns) == [c.name for c in flights.columns]
    year = schema.columns["year"]
    assert (year.type, year.nullable, year.min, year.max) == (ColumnType.int, False, 2013, 2013)
    delay = schema.columns["dep_delay"]
    assert (delay.type, delay.nullable, delay.min, delay.max) == (ColumnType.int, True, -43, 1301)
    assert schema.columns["origin"].allowed == ["EWR", "JFK", "LGA"]
    carriers = schema.columns["carrier"].allowed
    assert carriers is not None and len(carriers) == 16 and "9E" in carriers  # not the float 9.0
    assert schema.columns["dest"].allowed is None  # 105 airports > 30
    assert schema.columns["tailnum"].allowed is None and schema.columns["tailnum"].nullable
    assert schema.columns["time_hour"].type is ColumnType.datetime
    assert schema.checks.min_rows == 303_000  # 90 % of 336,776, rounded down
    assert schema.checks.max_null_fraction == 0.05  # arr_delay: 2.8 % nulls, with headroom


def test_the_profiled_data_passes_its_proposed_schema(
    flights: TableProfile, flights_parquet: Path, tmp_path: Path
) -> None:
    from conveyor.data.validation import validate_snapshot

    result = validate_snapshot(flights_parquet, load(propose_schema(flights)), workdir=tmp_path)
    assert result.passed and result.rows == 336_776 and result.quarantined_rows == 0
    assert len(result.checks) > 40  # every column's type, nulls, ranges and allowed values


def test_max_allowed_limits_which_columns_get_allowed(flights: TableProfile) -> None:
    schema = load(propose_schema(flights, max_allowed=10))
    assert schema.columns["origin"].allowed == ["EWR", "JFK", "LGA"]
    assert schema.columns["carrier"].allowed is None


TRICKY = ["NO", "1E", "yes", "y", "null", "~", "", " padded", "a, b", "#x", "a: b", "it's",
          "1e3", "0o17", ".inf", "-", "true", "On", "2013-01-01", "12:30", "é", "[x]"]  # fmt: skip


def test_values_and_names_yaml_would_misread_stay_strings() -> None:
    with duckdb.connect() as con:
        con.execute('CREATE TABLE t (code VARCHAR, "on" INTEGER, "a: b" DOUBLE, yes BOOLEAN)')
        con.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?)",
            [(v, i, i / 2, i % 2 == 0) for i, v in enumerate(TRICKY)],
        )
        profile = profile_relation(con, "t")
    schema = load(propose_schema(profile))
    assert schema.columns["code"].allowed == sorted(TRICKY)
    assert set(schema.columns) == {"code", "on", "a: b", "yes"}
    assert schema.columns["a: b"].max == (len(TRICKY) - 1) / 2
    assert schema.columns["yes"].type is ColumnType.bool
    assert schema.checks.max_null_fraction is None  # no nulls seen: nothing to propose


def test_columns_without_a_schema_type_are_left_out_with_a_comment() -> None:
    with duckdb.connect() as con:
        con.execute(
            "CREATE TABLE t AS SELECT i AS n, [i] AS items, TIME '10:00:00' AS at,"
            " CASE WHEN i < 2 THEN NULL ELSE 'x' END AS s FROM range(10) r(i)"
        )
        text = propose_schema(profile_relation(con, "t"))
    assert "# left out, no schema type fits: items (BIGINT[]), at (TIME)" in text
    schema = load(text)
    assert list(schema.columns) == ["n", "s"]
    assert schema.columns["s"].nullable and schema.columns["s"].allowed == ["x"]
    assert schema.checks.min_rows == 9
    assert schema.checks.max_null_fraction == 0.3  # 0.2 observed, +50 %


def test_empty_table_gives_columns_but_no_row_checks() -> None:
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t (a INTEGER, b DOUBLE)")
        schema = load(propose_schema(profile_relation(con, "t")))
    assert set(schema.columns) == {"a", "b"}
    assert schema.columns["b"].min is None
    assert schema.checks.min_rows is None and schema.checks.max_null_fraction is None
