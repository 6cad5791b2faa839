"""``validate_snapshot``: every check of ``schema:`` over one Parquet file, bad rows set aside."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from conveyor.data.validation._duckdb import open_dataset
from conveyor.data.validation._results import CheckResult, ValidationResult
from conveyor.data.validation._rows import Progress, RowScan, Tally
from conveyor.data.validation._table import (
    columns_check,
    freshness_check,
    null_fraction_check,
    row_count_checks,
    sql_checks,
    strict_check,
    unique_key_check,
)
from conveyor.errors import DataValidationError
from conveyor.spec import ColumnSpec, OnFailure, SchemaSpec

__all__ = ["validate_snapshot"]


def validate_snapshot(
    parquet: Path,
    schema: SchemaSpec,
    *,
    workdir: Path,
    time_column: str | None = None,
    batch_rows: int = 250_000,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> ValidationResult:
    """Check a snapshot against ``schema``; write its clean rows and its quarantined rows.

    Row checks (``schema.columns``: type, nullable, min, max, allowed, pattern, unique) decide
    which rows are quarantined; each quarantined row carries one reason per broken check in
    ``_quarantine_reasons``. Table checks (declared columns present, ``strict``,
    ``schema.checks``) pass or fail the table as a whole. Data problems never raise: the
    verdict is :attr:`ValidationResult.passed` and the caller applies it.

    The file is read in batches of ``batch_rows``; whole-file checks (``unique``,
    ``unique_key``, custom SQL) run in DuckDB. The same input and schema always give
    byte-identical output files, whatever ``batch_rows``.

    Args:
        parquet: The snapshot to check.
        schema: The ``schema:`` section of the spec.
        workdir: Folder for ``clean.parquet`` and ``quarantine.parquet`` (created if needed).
        time_column: The dataset's event-time column; needed by ``checks.freshness``.
        batch_rows: Rows checked at a time; bounds memory.
        progress: Called with (rows checked, rows in the file) after each batch.
        now: The time ``checks.freshness`` measures against (default: now, UTC; a naive
            value is read as UTC, as are naive timestamps in the data).

    Raises:
        FileNotFoundError: ``parquet`` does not exist.
        DataValidationError: the spec asks for a check that cannot be evaluated: a custom SQL
            query DuckDB rejects, a pattern the string engine rejects, or ``freshness``
            without a time column.
    """
    import pyarrow.parquet as pq

    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
    if not parquet.is_file():
        raise FileNotFoundError(f"no snapshot file at {parquet}")
    checks = schema.checks
    if checks.freshness is not None and time_column is None:
        raise DataValidationError(
            "schema.checks.freshness needs the dataset's time column; set dataset.time_column "
            "or remove the freshness check"
        )
    now = _utc(now if now is not None else datetime.now(UTC))
    workdir.mkdir(parents=True, exist_ok=True)
    con = open_dataset(parquet)
    try:
        # Custom SQL first: a query the spec got wrong fails before the long pass.
        custom = sql_checks(con, checks.sql)
        existing = list(pq.read_schema(parquet).names)
        present = {name: spec for name, spec in schema.columns.items() if name in existing}
        table = [columns_check(list(schema.columns), existing)]
        if schema.strict:
            table.append(strict_check(list(schema.columns), existing))
        key = unique_key_check(con, checks.unique_key, existing) if checks.unique_key else None
        freshness = time_column if checks.freshness is not None else None
        scan = RowScan(parquet, present, con=con, time_column=freshness)
        clean_path, quarantine_path = scan.run(workdir, batch_rows, progress)
    finally:
        con.close()
    table.extend(row_count_checks(scan.rows, checks))
    if checks.max_null_fraction is not None:
        table.append(null_fraction_check(scan.nulls, scan.rows, checks.max_null_fraction))
    if key is not None:
        table.append(key)
    if checks.freshness is not None and time_column is not None:
        table.append(
            freshness_check(
                time_column, scan.newest, limit=checks.freshness, now=now, existing=existing
            )
        )
    table.extend(custom)
    rows = [
        _row_result(present[name], name, check, tally, scan.rows)
        for (name, check), tally in scan.tallies.items()
    ]
    fraction = scan.quarantined_rows / scan.rows if scan.rows else 0.0
    tolerated = scan.quarantined_rows == 0 or (
        schema.on_failure is OnFailure.quarantine and fraction <= schema.max_quarantine_fraction
    )
    return ValidationResult(
        rows=scan.rows,
        clean_rows=scan.clean_rows,
        quarantined_rows=scan.quarantined_rows,
        clean_path=clean_path,
        quarantine_path=quarantine_path,
        checks=rows + table,
        quarantine_fraction=fraction,
        passed=tolerated and all(check.passed for check in table),
        on_failure=str(schema.on_failure),
        max_quarantine_fraction=schema.max_quarantine_fraction,
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_DETAILS = {
    "type": ("values that do not read as {type}: {n}", "every value reads as {type}"),
    "nullable": ("missing values: {n}", "no value is missing"),
    "min": ("values below the minimum {min:g}: {n}", "no value is below {min:g}"),
    "max": ("values above the maximum {max:g}: {n}", "no value is above {max:g}"),
    "allowed": (
        "values outside the {allowed} allowed: {n}",
        "every value is one of the {allowed} allowed",
    ),
    "pattern": ("values not matching {pattern!r}: {n}", "every value matches {pattern!r}"),
    "unique": (
        "rows holding a value that occurs more than once: {n}",
        "no value occurs more than once",
    ),
}


def _row_result(spec: ColumnSpec, column: str, check: str, tally: Tally, rows: int) -> CheckResult:
    failing, passing = _DETAILS[check]
    detail = (failing if tally.failed else passing).format(
        n=f"{tally.failed:,}",
        column=column,
        type=spec.type,
        min=spec.min or 0,
        max=spec.max or 0,
        allowed=len(spec.allowed or []),
        pattern=spec.pattern,
    )
    if tally.failed and rows:
        detail += f" ({tally.failed / rows:.2%} of rows)"
    return CheckResult(
        name=f"{column}.{check}",
        column=column,
        kind="row",
        failed=tally.failed,
        passed=tally.failed == 0,
        detail=detail,
        samples=tally.samples,
    )
