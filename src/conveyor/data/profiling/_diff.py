"""What changed between two tables: rows, columns, types, per-column statistics and drift.

Drift is one number per common column, measured against the first table:

* number columns: the population stability index (PSI) over the first table's deciles, i.e.
  up to 10 bins whose edges are the first table's 10 %, ..., 90 % values, so each bin holds
  about a tenth of it. ``PSI = Σ (b - a) · ln(b / a)`` over the bins' shares of non-null
  values (shares floored at 0.0001). Rules of thumb: below 0.1 stable, 0.1-0.25 a moderate
  shift, above 0.25 a major one.
* string and boolean columns: how much of the value shares moved, the total variation distance
  ``½ Σ |b - a|`` over the values in either table's top 10 plus one bucket for all other
  values; from 0 (same shares) to 1 (no value in common). Columns with too many distinct
  values to have a top 10 get no drift number.
* dates and times get none: they move by nature; their min and max show how.

The bin and value counts are exact: one aggregate query per table counts them in one scan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from conveyor.data._duckdb import quote_identifier as quote
from conveyor.data.profiling._profile import ColumnProfile, parquet_views, profile_relation
from conveyor.data.profiling._types import json_value
from conveyor.errors import SourceError

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "DRIFT_MAJOR",
    "DRIFT_MODERATE",
    "ColumnChange",
    "DatasetDiff",
    "diff_parquet",
    "diff_relations",
]

DRIFT_MODERATE: Final = 0.1
"""A drift number at or above this is a moderate shift (PSI and top-value shares alike)."""
DRIFT_MAJOR: Final = 0.25
"""A drift number at or above this is a major shift."""
NULL_CHANGE: Final = 0.01
"""A change of null fraction at least this large (one percentage point) is worth a line."""
_FLOOR: Final = 1e-4

DriftMethod = Literal["psi", "top_shares"]


@dataclass(frozen=True, kw_only=True)
class ColumnChange:
    """How one column common to both tables changed; each pair is ``(first, second)``.

    Attributes:
        name: Column name.
        null_fraction: Share of nulls.
        mean: Mean (number columns).
        min: Smallest value.
        max: Largest value.
        distinct: Distinct values (see :attr:`ColumnProfile.distinct`).
        drift: PSI or top-value shift (see the module docstring), None when not measured.
        drift_method: ``"psi"``, ``"top_shares"`` or None.
    """

    name: str
    null_fraction: tuple[float, float]
    mean: tuple[float | None, float | None]
    min: tuple[Any, Any]
    max: tuple[Any, Any]
    distinct: tuple[int, int]
    drift: float | None
    drift_method: DriftMethod | None

    @property
    def severity(self) -> Literal["none", "moderate", "major"]:
        """``"major"``, ``"moderate"`` or ``"none"``, from :data:`DRIFT_MODERATE` and
        :data:`DRIFT_MAJOR`."""
        if self.drift is None or self.drift < DRIFT_MODERATE:
            return "none"
        return "major" if self.drift >= DRIFT_MAJOR else "moderate"

    def to_json(self) -> dict[str, Any]:
        """The change as JSON-safe data."""
        return {
            "name": self.name,
            "null_fraction": list(self.null_fraction),
            "mean": json_value(self.mean),
            "min": json_value(self.min),
            "max": json_value(self.max),
            "distinct": list(self.distinct),
            "drift": json_value(self.drift),
            "drift_method": self.drift_method,
        }


@dataclass(frozen=True, kw_only=True)
class DatasetDiff:
    """What changed from a first table to a second.

    Attributes:
        rows: Row counts ``(first, second)``.
        added_columns: Columns only the second table has, in its order.
        removed_columns: Columns only the first table has, in its order.
        type_changes: ``(column, first type, second type)`` for common columns whose DuckDB
            type changed.
        column_changes: One :class:`ColumnChange` per common column, in the first table's order.
    """

    rows: tuple[int, int]
    added_columns: list[str]
    removed_columns: list[str]
    type_changes: list[tuple[str, str, str]]
    column_changes: list[ColumnChange]

    def to_json(self) -> dict[str, Any]:
        """The diff as JSON-safe data."""
        return {
            "rows": list(self.rows),
            "added_columns": self.added_columns,
            "removed_columns": self.removed_columns,
            "type_changes": [{"name": n, "from": a, "to": b} for n, a, b in self.type_changes],
            "column_changes": [change.to_json() for change in self.column_changes],
        }

    def summary_lines(self) -> list[str]:
        """A few lines for people: rows, column and type changes, and the notable columns.

        A column is notable when its drift is at least :data:`DRIFT_MODERATE` or its null
        fraction moved by at least one percentage point; the others are counted in one line.
        """
        first, second = self.rows
        change = f" ({(second - first) / first:+.1%})" if first else ""
        lines = [f"rows: {first:,} → {second:,}{change}"]
        if self.added_columns:
            lines.append(f"added columns: {', '.join(self.added_columns)}")
        if self.removed_columns:
            lines.append(f"removed columns: {', '.join(self.removed_columns)}")
        lines += [f"type of {name}: {a} → {b}" for name, a, b in self.type_changes]
        retyped = {name for name, _, _ in self.type_changes}
        quiet = 0
        for column in self.column_changes:
            parts = _notable(column)
            if parts:
                lines.append(f"{column.name}: {'; '.join(parts)}")
            elif column.name not in retyped:
                quiet += 1
        if quiet:
            noun = "column" if quiet == 1 else "columns"
            others = "other " if len(lines) > 1 else ""
            lines.append(f"{quiet} {others}common {noun}: no notable change")
        return lines


def diff_relations(con: duckdb.DuckDBPyConnection, first: str, second: str) -> DatasetDiff:
    """Compare two tables or views of one DuckDB connection, in three scans of each.

    Args:
        con: The connection that holds both relations.
        first: Name of the reference table or view (e.g. the older snapshot).
        second: Name of the table or view compared with it.

    Raises:
        SourceError: a relation does not exist or cannot be read.

    Two scans profile a table (:func:`profile_relation`); a third counts its values in the
    drift buckets.
    """
    import duckdb

    a, b = profile_relation(con, first), profile_relation(con, second)
    in_b = {c.name: c for c in b.columns}
    in_a = {c.name for c in a.columns}
    pairs = [(column, in_b[column.name]) for column in a.columns if column.name in in_b]
    plans = [_plan(x, y) for x, y in pairs]
    try:
        counts_a = _count(con, first, plans)
        counts_b = _count(con, second, plans)
    except duckdb.Error as err:
        raise SourceError(f"cannot compare {first!r} with {second!r}: {err}") from err
    changes = []
    for (x, y), plan, ca, cb in zip(pairs, plans, counts_a, counts_b, strict=True):
        drift = _drift(plan.method, ca, cb) if plan is not None else None
        changes.append(
            ColumnChange(
                name=x.name,
                null_fraction=(x.null_fraction, y.null_fraction),
                mean=(x.mean, y.mean),
                min=(x.min, y.min),
                max=(x.max, y.max),
                distinct=(x.distinct, y.distinct),
                drift=drift,
                drift_method=plan.method if plan is not None and drift is not None else None,
            )
        )
    return DatasetDiff(
        rows=(a.rows, b.rows),
        added_columns=[c.name for c in b.columns if c.name not in in_a],
        removed_columns=[c.name for c in a.columns if c.name not in in_b],
        type_changes=[(x.name, x.type, y.type) for x, y in pairs if x.type != y.type],
        column_changes=changes,
    )


def diff_parquet(first: Path, second: Path) -> DatasetDiff:
    """Compare two Parquet files (see :func:`diff_relations`) with a fresh DuckDB connection.

    Raises:
        SourceError: a file is missing or not readable Parquet.
    """
    with parquet_views({"first": first, "second": second}, action="compare") as con:
        return diff_relations(con, "first", "second")


@dataclass(frozen=True)
class _Plan:
    """What to count in both tables for one column's drift."""

    column: str
    method: DriftMethod
    edges: list[float]  # psi: upper bin edges (x <= edge); top_shares: unused
    values: list[str]  # top_shares: the values whose shares are compared


def _plan(a: ColumnProfile, b: ColumnProfile) -> _Plan | None:
    kinds = {a.kind, b.kind}
    if kinds <= {"int", "float"} and a.quantiles:
        edges = sorted({q for q in a.quantiles if math.isfinite(q)})
        return _Plan(a.name, "psi", edges, [])
    if len(kinds) == 1 and kinds <= {"str", "bool"} and a.top and b.top:
        values = sorted({v for v, _ in a.top} | {v for v, _ in b.top})
        return _Plan(a.name, "top_shares", [], values)
    return None


def _count(
    con: duckdb.DuckDBPyConnection, relation: str, plans: list[_Plan | None]
) -> list[list[int] | None]:
    """Per plan, ``[non-null count, count per bucket...]``, counted in one scan.

    The buckets are the bins between the edges (psi), or the values then "any other value"
    (top_shares); they add up to the non-null count. Each value is mapped to its bucket's
    number by one CASE expression and the numbers are counted with ``histogram``: many
    ``count(*) FILTER (...)`` aggregates would be several times slower.
    """
    exprs: list[str] = []
    params: list[Any] = []
    for plan in plans:
        if plan is None:
            continue
        col = quote(plan.column)
        if plan.method == "psi":
            tests = [f"WHEN {col} <= ? THEN {i}" for i in range(len(plan.edges))]
            params += plan.edges
            last = len(plan.edges)
        else:
            tests = [f"WHEN CAST({col} AS VARCHAR) = ? THEN {i}" for i in range(len(plan.values))]
            params += plan.values
            last = len(plan.values)
        exprs.append(
            f"histogram(CASE WHEN {col} IS NULL THEN NULL {' '.join(tests)} ELSE {last} END)"
        )
    if not exprs:
        return [None] * len(plans)
    row = con.execute(f"SELECT {', '.join(exprs)} FROM {quote(relation)}", params).fetchone()
    if row is None:  # pragma: no cover - an aggregate query always returns one row
        raise SourceError(f"counting values of {relation!r} returned no result")
    histograms = iter(row)
    result: list[list[int] | None] = []
    for plan in plans:
        if plan is None:
            result.append(None)
            continue
        counts = next(histograms) or {}
        buckets = [int(counts.get(i, 0)) for i in range(len(plan.edges) + len(plan.values) + 1)]
        result.append([sum(buckets), *buckets])
    return result


def _drift(method: DriftMethod, a: list[int] | None, b: list[int] | None) -> float | None:
    """PSI or total variation distance between two ``[total, count per bucket...]`` lists."""
    if a is None or b is None or not a[0] or not b[0]:
        return None
    shares_a = [n / a[0] for n in a[1:]]
    shares_b = [n / b[0] for n in b[1:]]
    if method == "top_shares":
        return sum(abs(y - x) for x, y in zip(shares_a, shares_b, strict=True)) / 2
    return sum(
        (y - x) * math.log(y / x)
        for x, y in (
            (max(x, _FLOOR), max(y, _FLOOR)) for x, y in zip(shares_a, shares_b, strict=True)
        )
    )


def _notable(column: ColumnChange) -> list[str]:
    parts = []
    if column.severity != "none" and column.drift is not None:
        label = "PSI" if column.drift_method == "psi" else "top-value shift"
        parts.append(f"{label} {column.drift:.2f} ({column.severity})")
        first, second = column.mean
        if first is not None and second is not None:
            parts.append(f"mean {first:.4g} → {second:.4g}")
    a, b = column.null_fraction
    if abs(b - a) >= NULL_CHANGE:
        parts.append(f"nulls {a:.1%} → {b:.1%}")
    return parts
