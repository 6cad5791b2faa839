"""Request payloads become per-feature numpy arrays, and every bad value is named exactly."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from conveyor.errors import ConveyorError
from conveyor.serving import (
    InputError,
    columns_from_arrays,
    columns_from_records,
    columns_from_split,
)

SCHEMA: dict[str, Any] = {
    "carrier": "categorical",
    "distance": "numeric",
    "weekend": "boolean",
    "departure": "datetime",
}
ROWS = [
    {"carrier": "UA", "distance": 719, "weekend": False, "departure": "2013-01-01T05:15:00"},
    {"carrier": None, "distance": 1.5, "weekend": True, "departure": "2013-01-01T06:00:00Z"},
    {"carrier": 7, "distance": None, "weekend": None, "departure": None, "extra": [1, 2]},
]


def _split(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    names = list(SCHEMA)
    return names, [[row.get(name) for name in names] for row in rows]


def _check_columns(columns: dict[str, np.ndarray[Any, Any]]) -> None:
    assert list(columns) == list(SCHEMA)  # extra keys are not carried along
    assert columns["carrier"].dtype == object
    assert columns["carrier"].tolist() == ["UA", None, "7"]
    assert columns["distance"].dtype == np.float64
    np.testing.assert_array_equal(columns["distance"], [719.0, 1.5, math.nan])
    np.testing.assert_array_equal(columns["weekend"], [0.0, 1.0, math.nan])
    assert columns["departure"].dtype == np.dtype("datetime64[us]")
    np.testing.assert_array_equal(
        columns["departure"],
        np.array(["2013-01-01T05:15", "2013-01-01T06:00", "NaT"], dtype="datetime64[us]"),
    )


def test_records_split_and_arrays_give_the_same_typed_columns() -> None:
    _check_columns(columns_from_records(ROWS, SCHEMA))
    _check_columns(columns_from_split(*_split(ROWS), SCHEMA))
    arrays = {name: [row.get(name) for row in ROWS] for name in SCHEMA}
    _check_columns(columns_from_arrays(arrays | {"ignored": [1, 2, 3]}, SCHEMA))


def test_numpy_arrays_pass_through_with_the_right_dtype() -> None:
    columns = columns_from_arrays(
        {
            "carrier": np.array(["UA", "AA"]),
            "distance": np.array([[1], [2]], dtype=np.int32),  # a (rows, 1) V2 tensor
            "weekend": np.array([True, False]),
            "departure": np.array(["2013-01-01", "2013-01-02"], dtype="datetime64[D]"),
        },
        SCHEMA,
    )
    assert columns["carrier"].tolist() == ["UA", "AA"]
    assert columns["distance"].dtype == np.float64
    np.testing.assert_array_equal(columns["distance"], [1.0, 2.0])
    np.testing.assert_array_equal(columns["weekend"], [1.0, 0.0])
    assert columns["departure"].dtype == np.dtype("datetime64[us]")


def test_timezone_offsets_become_naive_utc() -> None:
    rows = [dict(ROWS[0], departure="2013-01-01T07:15:00+02:00")]
    (departure,) = columns_from_records(rows, SCHEMA)["departure"]
    assert departure == np.datetime64("2013-01-01T05:15:00")


def test_features_a_record_may_leave_out_become_missing() -> None:
    rows = [{"carrier": "UA", "weekend": True}, {"carrier": "AA", "distance": 3, "weekend": 0}]
    columns = columns_from_records(rows, SCHEMA, allow_missing=frozenset({"distance", "departure"}))
    np.testing.assert_array_equal(columns["distance"], [math.nan, 3.0])
    assert np.isnat(columns["departure"]).all()


def _error(call: Any) -> InputError:
    with pytest.raises(InputError) as caught:
        call()
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, ConveyorError)
    return caught.value


def _with(row: int, **values: Any) -> list[dict[str, Any]]:
    rows = [dict(r) for r in ROWS]
    rows[row].update(values)
    return rows


@pytest.mark.parametrize(
    ("rows", "field", "row", "message"),
    [
        (_with(1, distance="abc"), "distance", 1, "expected a number, got 'abc'"),
        (_with(0, distance="12"), "distance", 0, "expected a number, got '12'"),
        (_with(2, distance="NaN"), "distance", 2, "expected a number, got 'NaN'"),
        (_with(1, distance=math.inf), "distance", 1, "expected a finite number, got inf"),
        (_with(0, distance=10**400), "distance", 0, "too large"),
        (_with(2, weekend="yes"), "weekend", 2, "expected a number, got 'yes'"),
        (_with(1, carrier={"code": "UA"}), "carrier", 1, "expected a string, got an object"),
        (_with(0, carrier=["UA"]), "carrier", 0, "expected a string, got a list"),
        (_with(2, distance=[1.0]), "distance", 2, "expected a number, got a list"),
        (_with(1, departure="yesterday"), "departure", 1, "ISO 8601 date-time string, got"),
        (_with(0, departure=1357016400), "departure", 0, "ISO 8601 date-time string, got"),
    ],
)
def test_a_wrong_value_is_refused_naming_field_and_row(
    rows: list[dict[str, Any]], field: str, row: int, message: str
) -> None:
    for call in (
        lambda: columns_from_records(rows, SCHEMA),
        lambda: columns_from_split(*_split(rows), SCHEMA),
    ):
        error = _error(call)
        assert (error.field, error.row) == (field, row)
        assert message in error.message
        assert str(error).startswith(f"field {field!r} (row {row}): ")
    # Columnar input names the same field and position.
    arrays = {name: [r.get(name) for r in rows] for name in SCHEMA}
    error = _error(lambda: columns_from_arrays(arrays, SCHEMA))
    assert (error.field, error.row) == (field, row)


def test_the_message_reads_as_one_line() -> None:
    error = _error(lambda: columns_from_records(_with(1, distance="abc"), SCHEMA))
    assert str(error) == "field 'distance' (row 1): expected a number, got 'abc'"


def test_a_missing_feature_is_named_with_the_expected_ones() -> None:
    rows = [dict(ROWS[0]), {k: v for k, v in ROWS[1].items() if k != "distance"}]
    error = _error(lambda: columns_from_records(rows, SCHEMA))
    assert (error.field, error.row) == ("distance", 1)
    assert "carrier, distance, weekend, departure" in error.message

    names, data = _split(ROWS)
    error = _error(lambda: columns_from_split(names[1:], [r[1:] for r in data], SCHEMA))
    assert (error.field, error.row) == ("carrier", None)
    assert str(error).startswith("field 'carrier': missing; the model expects the features")

    error = _error(lambda: columns_from_arrays({"carrier": ["UA"]}, SCHEMA))
    assert error.field == "distance"


@pytest.mark.parametrize("payload", [[], ()])
def test_no_rows_is_an_error(payload: Any) -> None:
    assert "no rows" in _error(lambda: columns_from_records(payload, SCHEMA)).message
    assert "no rows" in _error(lambda: columns_from_split(list(SCHEMA), payload, SCHEMA)).message
    empty = dict.fromkeys(SCHEMA, payload)
    assert "no rows" in _error(lambda: columns_from_arrays(empty, SCHEMA)).message


def test_a_record_that_is_not_an_object_is_named_by_row() -> None:
    error = _error(lambda: columns_from_records([ROWS[0], ["UA", 719]], SCHEMA))  # type: ignore[list-item]
    assert (error.field, error.row) == (None, 1)
    assert str(error) == "row 1: expected an object of feature values, got a list"
    error = _error(lambda: columns_from_records({"carrier": "UA"}, SCHEMA))  # type: ignore[arg-type]
    assert "expected a list of records" in error.message


def test_split_rows_must_match_the_columns() -> None:
    names, data = _split(ROWS)
    error = _error(lambda: columns_from_split(names, [data[0], data[1][:2]], SCHEMA))
    assert error.row == 1 and "has 2 values; the 4 columns need one each" in error.message
    error = _error(lambda: columns_from_split(names, [data[0], "UA"], SCHEMA))  # type: ignore[list-item]
    assert error.row == 1 and "expected a list of values" in error.message
    error = _error(lambda: columns_from_split([*names, "carrier"], [[*data[0], 1]], SCHEMA))
    assert "named more than once: carrier" in error.message


def test_columns_of_different_lengths_are_refused() -> None:
    arrays = {name: [row.get(name) for row in ROWS] for name in SCHEMA}
    arrays["weekend"] = [True]
    error = _error(lambda: columns_from_arrays(arrays, SCHEMA))
    assert error.field == "weekend"
    assert "has 1 values, but 'carrier' has 3" in error.message
    arrays["weekend"] = np.zeros((3, 2))
    error = _error(lambda: columns_from_arrays(arrays, SCHEMA))
    assert error.field == "weekend" and "shape (3, 2)" in error.message
    error = _error(lambda: columns_from_arrays(dict(arrays, weekend=True), SCHEMA))
    assert error.field == "weekend" and "expected a list of values, got True" in error.message


NUMBERS: dict[str, Any] = {"a": "numeric", "b": "numeric", "c": "boolean"}


def test_all_numeric_records_convert_in_one_block_like_column_by_column() -> None:
    rows = [{"a": 1, "b": 2.5, "c": True}, {"a": None, "b": -3, "c": False}]
    columns = columns_from_records(rows, NUMBERS)
    assert list(columns) == ["a", "b", "c"]
    assert all(c.dtype == np.float64 and c.flags["C_CONTIGUOUS"] for c in columns.values())
    assert np.array_equal(columns["a"], [1.0, math.nan], equal_nan=True)
    assert columns["b"].tolist() == [2.5, -3.0] and columns["c"].tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("value", "needle"),
    [("7", "field 'b' (row 1)"), (math.inf, "expected a finite number"), (10**400, "too large")],
)
def test_all_numeric_records_still_name_the_bad_value(value: Any, needle: str) -> None:
    rows = [{"a": 1, "b": 2, "c": True}, {"a": 1, "b": value, "c": True}]
    with pytest.raises(InputError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        columns_from_records(rows, NUMBERS)
