"""Whole-table checks: declared and unexpected columns, row counts, nulls, keys, freshness, SQL.

A failing table check fails the validation but quarantines no row. Row counts are taken on the
*input* rows: rows set aside are judged by ``max_quarantine_fraction``, and counting them here
again would fail one problem twice.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from conveyor.data._duckdb import quote_identifier as quote
from conveyor.data.validation._results import CheckResult, json_safe
from conveyor.errors import DataValidationError
from conveyor.spec import format_duration

if TYPE_CHECKING:
    import duckdb

    from conveyor.spec import ChecksSpec, SqlCheck

__all__ = [
    "columns_check",
    "freshness_check",
    "nearest",
    "null_fraction_check",
    "row_count_checks",
    "sql_checks",
    "strict_check",
    "unique_key_check",
]

_SAMPLES = 5


def _table(
    name: str,
    passed: bool,
    detail: str,
    samples: list[dict[str, Any]] | None = None,
    column: str | None = None,
) -> CheckResult:
    return CheckResult(name, column, "table", int(not passed), passed, detail, samples or [])


def nearest(name: str, existing: Sequence[str]) -> str | None:
    """The existing column whose name is closest to ``name`` (ignoring case), if any is close."""
    lowered = {column.lower(): column for column in existing}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def _missing(columns: Sequence[str], existing: Sequence[str]) -> tuple[str, list[dict[str, Any]]]:
    samples = [{"column": c, "nearest": nearest(c, existing)} for c in columns]
    named = ", ".join(
        f"{s['column']!r}" + (f" (did you mean {s['nearest']!r}?)" if s["nearest"] else "")
        for s in samples
    )
    return named, samples


def columns_check(declared: Sequence[str], existing: Sequence[str]) -> CheckResult:
    """Every column under ``schema.columns`` exists; a missing one is named with the nearest."""
    absent = [name for name in declared if name not in existing]
    if not absent:
        return _table("table.columns", True, f"all {len(declared)} declared columns are present")
    named, samples = _missing(absent, existing)
    detail = f"declared columns missing: {named}"
    return _table("table.columns", False, detail, samples)


def strict_check(declared: Sequence[str], existing: Sequence[str]) -> CheckResult:
    """With ``schema.strict``, no column beyond those declared exists."""
    extra = [name for name in existing if name not in declared]
    if not extra:
        return _table("table.strict", True, "no column beyond the declared ones")
    names = ", ".join(repr(name) for name in extra)
    detail = f"columns not declared under schema.columns (strict): {names}"
    return _table("table.strict", False, detail, [{"column": name} for name in extra])


def row_count_checks(rows: int, checks: ChecksSpec) -> list[CheckResult]:
    """``min_rows`` and ``max_rows``, on the input rows."""
    results = []
    if checks.min_rows is not None:
        ok = rows >= checks.min_rows
        relation = "at least" if ok else "fewer than the minimum"
        detail = f"{rows:,} rows, {relation} {checks.min_rows:,}"
        results.append(_table("table.min_rows", ok, detail))
    if checks.max_rows is not None:
        ok = rows <= checks.max_rows
        relation = "at most" if ok else "more than the maximum"
        detail = f"{rows:,} rows, {relation} {checks.max_rows:,}"
        results.append(_table("table.max_rows", ok, detail))
    return results


def null_fraction_check(nulls: Mapping[str, int], rows: int, limit: float) -> CheckResult:
    """No column has a larger share of missing values (null or NaN) than ``limit``."""
    fractions = {name: (count / rows if rows else 0.0) for name, count in nulls.items()}
    ranked = sorted(fractions.items(), key=lambda item: (-item[1], item[0]))
    over = [(name, share) for name, share in ranked if share > limit]
    samples = [
        {"column": name, "null_fraction": share, "nulls": nulls[name]}
        for name, share in (over or ranked)[:_SAMPLES]
    ]
    if not over:
        worst = f" (highest: {ranked[0][0]} {ranked[0][1]:.2%})" if ranked else ""
        return _table(
            "table.max_null_fraction",
            True,
            f"no column has more than {limit:.2%} missing values{worst}",
            samples,
        )
    listed = ", ".join(f"{name} {share:.2%}" for name, share in over)
    detail = f"columns with more than {limit:.2%} missing values: {listed}"
    return _table("table.max_null_fraction", False, detail, samples)


def unique_key_check(
    con: duckdb.DuckDBPyConnection, key: Sequence[str], existing: Sequence[str]
) -> CheckResult:
    """The combined values of ``key`` occur at most once (null equals null here)."""
    label = "(" + ", ".join(key) + ")"
    absent = [name for name in key if name not in existing]
    if absent:
        named, samples = _missing(absent, existing)
        return _table("table.unique_key", False, f"unique_key column missing: {named}", samples)
    columns = ", ".join(quote(name) for name in key)
    repeated = f"select {columns}, count(*) as rows from dataset group by all having count(*) > 1"
    groups, rows = con.sql(f"select count(*), coalesce(sum(rows), 0) from ({repeated})").fetchall()[
        0
    ]
    if not groups:
        return _table("table.unique_key", True, f"every {label} is unique")
    top = con.sql(f"{repeated} order by rows desc, {columns} limit {_SAMPLES}").to_arrow_table()
    detail = f"values of {label} occurring more than once: {groups:,}, on {int(rows):,} rows"
    return _table("table.unique_key", False, detail, json_safe(top.to_pylist()))


def freshness_check(
    time_column: str,
    newest: datetime | None,
    *,
    limit: timedelta,
    now: datetime,
    existing: Sequence[str],
) -> CheckResult:
    """The newest value of ``time_column`` is at most ``limit`` older than ``now``."""
    if time_column not in existing:
        named, samples = _missing([time_column], existing)
        detail = f"the time column is missing: {named}"
        return _table("table.freshness", False, detail, samples, time_column)
    if newest is None:
        detail = f"{time_column} holds no readable time value"
        return _table("table.freshness", False, detail, column=time_column)
    age = now - newest
    ok = age <= limit
    shown = format_duration(max(age, timedelta(0)))
    detail = (
        f"newest {time_column} is {newest.isoformat()}, {shown} before {now.isoformat()}; "
        f"the limit is {format_duration(limit)}"
    )
    sample = {"newest": newest.isoformat(), "now": now.isoformat(), "age": age.total_seconds()}
    return _table("table.freshness", ok, detail, [sample], time_column)


def sql_checks(con: duckdb.DuckDBPyConnection, checks: Sequence[SqlCheck]) -> list[CheckResult]:
    """Each custom query over ``dataset`` passes when it returns no row.

    Raises:
        DataValidationError: a query cannot run (a mistake in the spec, not in the data); the
            message names the check and gives DuckDB's reason.
    """
    import duckdb

    results = []
    for index, check in enumerate(checks):
        query = check.query.strip().rstrip(";").strip()
        try:
            failing = con.sql(f"select count(*) from ({query}) as failing").fetchall()[0][0]
            samples = con.sql(f"select * from ({query}) as failing limit {_SAMPLES}")
            rows = samples.to_arrow_table().to_pylist() if failing else []
        except duckdb.Error as err:
            reason = str(err).strip().splitlines()[0]
            raise DataValidationError(
                f"schema.checks.sql[{index}] ({check.name!r}) cannot run in DuckDB: {reason}. "
                "Fix the query; it reads the table 'dataset' and returns the rows that fail"
            ) from err
        about = f" ({check.description})" if check.description else ""
        detail = (
            f"rows breaking the rule{about}: {failing:,}" if failing else "no row breaks the rule"
        )
        results.append(_table(f"sql.{check.name}", not failing, detail, json_safe(rows)))
    return results
