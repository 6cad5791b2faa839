"""Row checks: every failing row is quarantined with one exact reason per broken check."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conveyor.data.validation import REASONS_COLUMN
from conveyor.errors import DataValidationError
from conveyor.spec import ColumnSpec, ColumnType, SchemaSpec

SCHEMA: dict[str, Any] = {
    "columns": {
        "id": {"type": "int", "unique": True},
        "code": {"type": "str", "allowed": ["AA", "UA", "AAA"], "pattern": "[A-Z]{2}"},
        "n": {"type": "int", "min": 1, "max": 100},
        "x": {"type": "float", "nullable": True, "min": -1, "max": 1},
    },
    "max_quarantine_fraction": 1,
}

ROWS = {
    "key": [f"r{i}" for i in range(10)],
    "id": [1, 2, 3, 4, 5, 6, 7, 8, 9, 1],
    "code": ["AA", "UA", "ZZ", "aa", None, "AA", "UA", "AA", "AAA", "UA"],
    "n": [5, 5, 5, 5, 5, 0, 101, 5, 5, 5],
    "x": [0.0, 0.5, -0.5, 0.0, 0.0, 0.0, 0.0, math.nan, 1.5, None],
}


def test_each_row_check_gives_its_reason(write, validate, out) -> None:
    path = write(ROWS)
    result = validate(path, SCHEMA)

    assert out.reasons(result, "key") == {
        "r0": [("id", "unique", "1")],
        "r2": [("code", "allowed", "ZZ")],
        "r3": [("code", "allowed", "aa"), ("code", "pattern", "aa")],
        "r4": [("code", "nullable", None)],
        "r5": [("n", "min", "0")],
        "r6": [("n", "max", "101")],
        "r8": [("code", "pattern", "AAA"), ("x", "max", "1.5")],
        "r9": [("id", "unique", "1")],
    }
    assert (result.rows, result.clean_rows, result.quarantined_rows) == (10, 2, 8)
    assert out.clean(result).column("key").to_pylist() == ["r1", "r7"]
    failed = {c.name: c.failed for c in result.checks if c.kind == "row"}
    assert failed == {
        "id.type": 0,
        "id.nullable": 0,
        "id.unique": 2,
        "code.type": 0,
        "code.nullable": 1,
        "code.allowed": 2,
        "code.pattern": 2,
        "n.type": 0,
        "n.nullable": 0,
        "n.min": 1,
        "n.max": 1,
        "x.type": 0,
        "x.min": 0,
        "x.max": 1,
    }
    assert out.check(result, "n.max").detail == "values above the maximum 100: 1 (10.00% of rows)"
    assert out.check(result, "code.allowed").samples[0] == {
        "_row": 2,
        "code": "ZZ",
        "key": "r2",
        "id": 3,
        "n": 5,
        "x": -0.5,
    }


def test_clean_and_quarantine_files_keep_the_input_columns_and_types(write, validate) -> None:
    path = write(ROWS)
    result = validate(path, SCHEMA)
    source = pq.read_schema(path).remove_metadata()
    assert pq.read_schema(result.clean_path) == source
    assert result.quarantine_path is not None
    quarantine = pq.read_schema(result.quarantine_path)
    assert quarantine.names == [*source.names, REASONS_COLUMN]
    assert quarantine.remove(len(source)) == source
    assert quarantine.field(REASONS_COLUMN).type == pa.list_(
        pa.struct([("column", pa.string()), ("check", pa.string()), ("value", pa.string())])
    )
    expected = pq.read_table(path).take([1, 7]).to_pandas()
    pd.testing.assert_frame_equal(pq.read_table(result.clean_path).to_pandas(), expected)


@pytest.mark.parametrize(
    ("physical", "declared", "values", "bad"),
    [
        (pa.string(), "int", ["1", " 2", "x", "3.5", "1e3", ""], ["x", "3.5", ""]),
        (pa.float64(), "int", [1.0, 2.5, -3.0, math.inf], ["2.5", "inf"]),
        (pa.bool_(), "int", [True, False], ["true", "false"]),
        (pa.string(), "float", ["1.5", "NaN", "1,5", "-2e-3"], ["1,5"]),
        (pa.int64(), "float", [1, 2], []),
        (pa.string(), "bool", ["true", " No", "1", "maybe"], ["maybe"]),
        (pa.int64(), "bool", [0, 1, 2], ["2"]),
        (pa.string(), "date", ["2024-01-31", "2024-02-30", "1/2/24"], ["2024-02-30", "1/2/24"]),
        (pa.timestamp("s"), "date", [datetime(2024, 1, 1), datetime(2024, 1, 1, 5)],
         ["2024-01-01 05:00:00"]),
        (pa.string(), "datetime", ["2024-01-01T05:00:00", "2024-01-02", "soon"], ["soon"]),
        (pa.date32(), "datetime", [date(2024, 1, 1)], []),
        (pa.int64(), "str", [1, 2], []),
        (pa.list_(pa.int64()), "str", [[1], [2, 3]], ["[1]", "[2, 3]"]),
    ],
)  # fmt: skip
def test_values_that_do_not_read_as_the_declared_type_fail_type(
    write, validate, out, physical, declared, values, bad
) -> None:
    path = write({"v": pa.array(values, physical), "i": list(range(len(values)))})
    result = validate(path, {"columns": {"v": {"type": declared, "nullable": True}}})
    found = list(out.reasons(result, "i").values()) if bad else []
    assert found == [[("v", "type", value)] for value in bad]
    assert out.check(result, "v.type").failed == len(bad)


def test_a_value_that_does_not_read_is_a_type_failure_not_also_a_null(write, validate, out) -> None:
    path = write({"n": ["7000", "x", None, "5"]})
    result = validate(path, {"columns": {"n": {"type": "int", "max": 6000}}})
    assert out.reasons(result, "n") == {
        "7000": [("n", "max", "7000")],
        "x": [("n", "type", "x")],
        None: [("n", "nullable", None)],
    }


def test_checks_apply_to_the_value_read_as_the_declared_type(write, validate, out) -> None:
    path = write({"code": [1, 2, 3]})
    result = validate(path, {"columns": {"code": {"type": "str", "allowed": ["1", "2"]}}})
    assert out.reasons(result, "code") == {3: [("code", "allowed", "3")]}


def test_pattern_must_match_the_whole_value(write, validate, out) -> None:
    path = write({"code": ["AB", "ABC", "xAB", "A"]})
    result = validate(path, {"columns": {"code": {"type": "str", "pattern": "[A-Z]{2}"}}})
    assert sorted(out.reasons(result, "code")) == ["A", "ABC", "xAB"]


def test_dictionary_encoded_columns_are_checked_by_value(write, validate, out) -> None:
    frame = pd.DataFrame({"code": pd.Categorical(["AA", "ZZ", "AA", None])})
    path = write(pa.Table.from_pandas(frame, preserve_index=False))
    result = validate(path, {"columns": {"code": {"type": "str", "allowed": ["AA"]}}})
    assert [r[REASONS_COLUMN] for r in out.quarantined(result)] == [
        [{"column": "code", "check": "allowed", "value": "ZZ"}],
        [{"column": "code", "check": "nullable", "value": None}],
    ]


def test_unique_ignores_missing_values(write, validate, out) -> None:
    path = write({"k": [1.0, math.nan, math.nan, None, None, 2.0, 2.0]})
    result = validate(path, {"columns": {"k": {"type": "float", "nullable": True, "unique": True}}})
    assert [row["k"] for row in out.quarantined(result)] == [2.0, 2.0]
    assert out.check(result, "k.unique").failed == 2


def _batches_input(write) -> Path:
    ids = list(range(50))
    ids[45] = 3  # duplicates far apart: batch 0 and batch 6 (of 7 rows)
    ids[7] = 6  # duplicates on both sides of the first batch boundary
    n = [10] * 50
    for row in (6, 13, 14, 49):
        n[row] = -1
    return write({"id": ids, "n": n, "row": list(range(50))}, row_group_size=20)


BATCH_SCHEMA = {
    "columns": {"id": {"type": "int", "unique": True}, "n": {"type": "int", "min": 0}},
    "max_quarantine_fraction": 0.5,
}


def test_batches_and_duplicates_across_batches(write, validate, out) -> None:
    result = validate(_batches_input(write), BATCH_SCHEMA, batch_rows=7)
    assert out.reasons(result, "row") == {
        3: [("id", "unique", "3")],
        6: [("id", "unique", "6"), ("n", "min", "-1")],
        7: [("id", "unique", "6")],
        13: [("n", "min", "-1")],
        14: [("n", "min", "-1")],
        45: [("id", "unique", "3")],
        49: [("n", "min", "-1")],
    }
    assert out.clean(result).column("row").to_pylist() == [
        r for r in range(50) if r not in {3, 6, 7, 13, 14, 45, 49}
    ]
    assert [s["_row"] for s in out.check(result, "id.unique").samples] == [3, 6, 7, 45]
    assert result.passed


def test_outputs_are_byte_identical_whatever_the_batch_size(write, validate, out) -> None:
    path = _batches_input(write)
    runs = [validate(path, BATCH_SCHEMA, batch_rows=size) for size in (7, 7, 1000, 1)]
    assert len({out.sha256(run.clean_path) for run in runs}) == 1
    assert len({out.sha256(run.quarantine_path) for run in runs}) == 1
    assert runs[0].clean_path != runs[1].clean_path


def test_pandas_metadata_is_not_carried_into_the_outputs(write, validate) -> None:
    frame = pd.DataFrame({"n": [1, 2, -1]}, index=[10, 11, 12])
    path = write(pa.Table.from_pandas(frame))
    result = validate(path, {"columns": {"n": {"type": "int", "min": 0}}})
    assert pq.read_schema(result.clean_path).metadata is None
    assert pd.read_parquet(result.clean_path)["n"].tolist() == [1, 2]


def test_no_failure_means_no_quarantine_file_even_in_a_reused_workdir(
    write, validate, tmp_path
) -> None:
    workdir = tmp_path / "work"
    dirty = validate(
        write({"n": [1, -1]}), {"columns": {"n": {"type": "int", "min": 0}}}, workdir=workdir
    )
    assert dirty.quarantine_path == workdir / "quarantine.parquet"
    clean = validate(
        write({"n": [1, 2]}), {"columns": {"n": {"type": "int", "min": 0}}}, workdir=workdir
    )
    assert clean.quarantine_path is None and clean.quarantined_rows == 0
    assert sorted(p.name for p in workdir.iterdir()) == ["clean.parquet"]


def test_empty_input_gives_an_empty_clean_file(write, validate, out) -> None:
    path = write({"n": pa.array([], pa.int64())})
    result = validate(path, {"columns": {"n": {"type": "int", "min": 0}}})
    assert (result.rows, result.quarantine_fraction, result.passed) == (0, 0.0, True)
    assert out.clean(result).schema.names == ["n"] and out.clean(result).num_rows == 0


def test_a_pattern_that_cannot_be_evaluated_is_a_spec_error(write, validate) -> None:
    broken = ColumnSpec.model_construct(type=ColumnType.str, nullable=True, pattern="[a-")
    schema = SchemaSpec.model_construct(columns={"code": broken})
    with pytest.raises(
        DataValidationError,
        match=r"schema\.columns\.code\.pattern: '\[a-' cannot .*regular expression",
    ):
        validate(write({"code": ["a"]}), schema)


def test_a_missing_input_file_is_not_a_data_problem(validate, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no snapshot file at"):
        validate(tmp_path / "nope.parquet", {})
