"""Table checks pass or fail the whole table; the verdict adds the quarantine policy."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from conveyor.errors import DataValidationError


def test_strict_names_the_undeclared_columns(write, validate, out) -> None:
    path = write({"a": [1], "b": [2], "c": [3]})
    result = validate(path, {"columns": {"a": {"type": "int"}}, "strict": True})
    strict = out.check(result, "table.strict")
    assert not strict.passed and strict.failed == 1 and strict.kind == "table"
    assert strict.detail == "columns not declared under schema.columns (strict): 'b', 'c'"
    assert strict.samples == [{"column": "b"}, {"column": "c"}]
    assert result.quarantined_rows == 0 and not result.passed


def test_without_strict_extra_columns_are_fine(write, validate, out) -> None:
    result = validate(write({"a": [1], "b": [2]}), {"columns": {"a": {"type": "int"}}})
    assert "table.strict" not in {c.name for c in result.checks}
    assert result.passed


def test_a_missing_column_is_named_with_the_nearest_existing_one(write, validate, out) -> None:
    path = write({"distance": [1, 2], "carrier": ["AA", "UA"]})
    schema = {"columns": {"Distnce": {"type": "int", "max": 1}, "zzz": {"type": "str"}}}
    result = validate(path, schema)
    columns = out.check(result, "table.columns")
    assert not columns.passed
    assert columns.detail == "declared columns missing: 'Distnce' (did you mean 'distance'?), 'zzz'"
    assert columns.samples == [
        {"column": "Distnce", "nearest": "distance"},
        {"column": "zzz", "nearest": None},
    ]
    assert [c.name for c in result.checks] == ["table.columns"]  # no row check on a ghost
    assert result.clean_rows == 2 and not result.passed


@pytest.mark.parametrize(
    ("checks", "passed", "detail"),
    [
        ({"min_rows": 10}, True, "10 rows, at least 10"),
        ({"min_rows": 11}, False, "10 rows, fewer than the minimum 11"),
        ({"max_rows": 10}, True, "10 rows, at most 10"),
        ({"max_rows": 9}, False, "10 rows, more than the maximum 9"),
    ],
)
def test_row_counts_are_taken_on_the_input_rows(write, validate, out, checks, passed, detail):
    path = write({"n": [1, -1] * 5})  # half the rows are quarantined, yet all count
    schema = {"columns": {"n": {"type": "int", "min": 0}}, "checks": checks}
    result = validate(path, {**schema, "max_quarantine_fraction": 0.5})
    (counted,) = [c for c in result.checks if c.name in {"table.min_rows", "table.max_rows"}]
    assert (counted.passed, counted.detail) == (passed, detail)
    assert result.passed is passed


def test_max_null_fraction_counts_nulls_and_nan_per_column(write, validate, out) -> None:
    path = write({"x": [1.0, math.nan, None, 4.0, 5.0], "s": ["a", None, "b", "c", "d"]})
    strict = validate(path, {"checks": {"max_null_fraction": 0.3}})
    nulls = out.check(strict, "table.max_null_fraction")
    assert not nulls.passed
    assert nulls.detail == "columns with more than 30.00% missing values: x 40.00%"
    assert nulls.samples == [{"column": "x", "null_fraction": 0.4, "nulls": 2}]
    lenient = out.check(
        validate(path, {"checks": {"max_null_fraction": 0.4}}), "table.max_null_fraction"
    )
    assert lenient.passed
    assert lenient.detail == "no column has more than 40.00% missing values (highest: x 40.00%)"


def test_unique_key_finds_duplicate_combinations(write, validate, out) -> None:
    path = write({"a": [1, 1, 1, 2, 2], "b": ["x", "x", "y", "x", "x"], "c": [1, 2, 3, 4, 5]})
    result = validate(path, {"checks": {"unique_key": ["a", "b"]}})
    key = out.check(result, "table.unique_key")
    assert not key.passed
    assert key.detail == "values of (a, b) occurring more than once: 2, on 4 rows"
    assert key.samples == [{"a": 1, "b": "x", "rows": 2}, {"a": 2, "b": "x", "rows": 2}]
    assert result.quarantined_rows == 0  # a table check sets no row aside
    unique = validate(path, {"checks": {"unique_key": ["a", "b", "c"]}})
    assert out.check(unique, "table.unique_key").passed
    missing = validate(path, {"checks": {"unique_key": ["a", "bb"]}})
    assert "'bb' (did you mean 'b'?)" in out.check(missing, "table.unique_key").detail


def _times(*hours: int, tz: str | None = None) -> pa.Array:
    start = datetime(2024, 1, 1)
    return pa.array([start + timedelta(hours=h) for h in hours], pa.timestamp("us", tz=tz))


@pytest.mark.parametrize(
    ("now", "passed"),
    [
        (datetime(2024, 1, 2, 11, tzinfo=UTC), True),
        (datetime(2024, 1, 2, 12, tzinfo=UTC), True),
        (datetime(2024, 1, 2, 12, 0, 1, tzinfo=UTC), False),
        (datetime(2024, 1, 2, 12), True),  # a naive `now` is UTC
        (datetime(2024, 1, 2, 14, tzinfo=timezone(timedelta(hours=2))), True),
    ],
)
def test_freshness_compares_the_newest_time_with_now(write, validate, out, now, passed) -> None:
    path = write({"t": _times(3, 12, 5)})
    result = validate(path, {"checks": {"freshness": "1d"}}, time_column="t", now=now)
    fresh = out.check(result, "table.freshness")
    assert (fresh.passed, result.passed) == (passed, passed)
    assert fresh.column == "t"
    assert fresh.samples[0]["newest"] == "2024-01-01T12:00:00+00:00"


def test_freshness_reads_zoned_and_text_times(write, validate, out) -> None:
    zoned = write({"t": _times(12, tz="Europe/Paris")})  # stored as UTC instants
    text = write({"t": ["2024-01-01T10:00:00+02:00", "2024-01-01T12:00:00Z", None, "bad"]})
    now = datetime(2024, 1, 1, 18, tzinfo=UTC)
    for path in (zoned, text):
        result = validate(path, {"checks": {"freshness": "6h"}}, time_column="t", now=now)
        fresh = out.check(result, "table.freshness")
        assert fresh.passed and fresh.samples[0]["newest"] == "2024-01-01T12:00:00+00:00"
        assert fresh.detail == (
            "newest t is 2024-01-01T12:00:00+00:00, 6h before 2024-01-01T18:00:00+00:00; "
            "the limit is 6h"
        )


def test_freshness_fails_on_a_missing_or_unreadable_time_column(write, validate, out) -> None:
    schema = {"checks": {"freshness": "1h"}}
    missing = validate(write({"time": _times(1)}), schema, time_column="tme")
    assert out.check(missing, "table.freshness").detail == (
        "the time column is missing: 'tme' (did you mean 'time'?)"
    )
    unreadable = validate(write({"t": ["soon", None]}), schema, time_column="t")
    assert out.check(unreadable, "table.freshness").detail == "t holds no readable time value"
    assert not missing.passed and not unreadable.passed


def test_freshness_without_a_time_column_is_a_spec_error(write, validate) -> None:
    with pytest.raises(DataValidationError, match=r"set dataset\.time_column"):
        validate(write({"t": _times(1)}), {"checks": {"freshness": "1h"}})


def test_sql_checks_pass_on_no_rows_and_fail_with_samples(write, validate, out) -> None:
    path = write({"dep": [5, -3, 7, -1], "arr": [6, 2, 8, 1]})
    checks = [
        {"name": "no_negative_delay", "query": "select * from dataset where dep < 0;"},
        {"name": "arrives_after", "query": "select * from dataset where arr < dep"},
        {"name": "counted", "query": "select count(*) from dataset", "description": "one row"},
    ]
    result = validate(path, {"checks": {"sql": checks}})
    negative = out.check(result, "sql.no_negative_delay")
    assert (negative.passed, negative.failed, negative.kind) == (False, 1, "table")
    assert negative.detail == "rows breaking the rule: 2"
    assert negative.samples == [{"dep": -3, "arr": 2}, {"dep": -1, "arr": 1}]
    assert out.check(result, "sql.arrives_after").passed
    assert out.check(result, "sql.counted").detail == "rows breaking the rule (one row): 1"
    assert not result.passed


def test_a_sql_check_that_cannot_run_is_a_spec_error_naming_it(write, validate) -> None:
    path = write({"dep": [1]})
    checks = [{"name": "typo", "query": "select * from dataset where dep_delay < 0"}]
    with pytest.raises(DataValidationError) as info:
        validate(path, {"checks": {"sql": checks}})
    message = str(info.value)
    assert message.startswith("schema.checks.sql[0] ('typo') cannot run in DuckDB: Binder Error")
    assert "dep_delay" in message and "\n" not in message


@pytest.mark.parametrize(
    ("policy", "bad_rows", "passed"),
    [
        ({"max_quarantine_fraction": 0.1}, 1, True),
        ({"max_quarantine_fraction": 0.1}, 2, False),
        ({"max_quarantine_fraction": 0.0}, 0, True),
        ({"on_failure": "fail", "max_quarantine_fraction": 1}, 1, False),
        ({"on_failure": "fail"}, 0, True),
    ],
)
def test_verdict_applies_the_quarantine_policy(write, validate, policy, bad_rows, passed) -> None:
    values = [-1] * bad_rows + [1] * (10 - bad_rows)
    result = validate(write({"n": values}), {"columns": {"n": {"type": "int", "min": 0}}, **policy})
    assert result.quarantined_rows == bad_rows
    assert result.quarantine_fraction == bad_rows / 10
    assert result.passed is passed


def test_a_failing_table_check_fails_even_without_bad_rows(write, validate) -> None:
    result = validate(write({"n": [1, 2]}), {"checks": {"min_rows": 3}})
    assert result.quarantined_rows == 0 and not result.passed
