"""Per-column statistics of a table, computed by DuckDB in two scans, whatever the table's size.

The first scan computes, in one aggregate query, every column's count, approximate distinct
count, min and max, mean and standard deviation (numbers) and string lengths. The second
computes the deciles of the number columns (from a random sample of about
:data:`QUANTILE_SAMPLE` rows) and exact value counts for the columns with few distinct values
(strings and booleans with at most :data:`HISTOGRAM_MAX_DISTINCT`, any column with at most
:data:`LOW_CARDINALITY`): their most frequent values and their exact distinct count.

No row ever reaches Python, so memory does not grow with the table: 20 columns of 10 million
rows take about five seconds on two cores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from conveyor.data._duckdb import connect
from conveyor.data._duckdb import quote_identifier as quote
from conveyor.data.profiling._types import Kind, json_value, kind_of
from conveyor.errors import SourceError

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "DECILES",
    "HISTOGRAM_MAX_DISTINCT",
    "LOW_CARDINALITY",
    "QUANTILE_SAMPLE",
    "TOP_VALUES",
    "VALUES_LIMIT",
    "ColumnProfile",
    "TableProfile",
    "parquet_views",
    "profile_parquet",
    "profile_relation",
]

TOP_VALUES: Final = 10
"""How many of the most frequent values a column profile keeps."""
HISTOGRAM_MAX_DISTINCT: Final = 10_000
"""String and boolean columns with at most this many (approximate) distinct values get exact
value counts; above it, a top-10 says little and counting costs memory."""
LOW_CARDINALITY: Final = 50
"""Columns of any type with at most this many distinct values get exact value counts too."""
VALUES_LIMIT: Final = 100
"""String and boolean columns with at most this many distinct values list them all."""
QUANTILE_SAMPLE: Final = 100_000
"""Deciles come from a random sample of about this many rows (exact for smaller tables)."""
DECILES: Final = tuple(i / 10 for i in range(1, 10))

_NUMERIC: Final = frozenset({"int", "float"})
_TIMESTAMPTZ: Final = "TIMESTAMP WITH TIME ZONE"


@dataclass(frozen=True, kw_only=True)
class ColumnProfile:
    """Statistics of one column.

    Attributes:
        name: Column name.
        type: DuckDB type, e.g. ``BIGINT``, ``VARCHAR``, ``TIMESTAMP WITH TIME ZONE``.
        count: Non-null values.
        nulls: Null values.
        null_fraction: ``nulls`` over the table's rows (0.0 for an empty table).
        distinct: Distinct non-null values: exact when ``top`` is filled, otherwise DuckDB's
            HyperLogLog estimate (within a few percent).
        min: Smallest value (numbers, strings, booleans, dates and times), None if all null.
        max: Largest value, like ``min``.
        mean: Mean of a number column.
        std: Sample standard deviation of a number column.
        top: Up to :data:`TOP_VALUES` ``(value as text, count)`` pairs, most frequent first,
            for columns with few distinct values (see the module docstring); empty otherwise.
        min_length: Shortest string (string columns).
        max_length: Longest string (string columns).
        quantiles: Deciles (10 %, 20 %, ... 90 %) of a number column: values of the column,
            exact up to :data:`QUANTILE_SAMPLE` rows, from a random sample of that size above.
        values: Every distinct value as text, sorted, for string and boolean columns with at
            most :data:`VALUES_LIMIT` of them.
    """

    name: str
    type: str
    count: int
    nulls: int
    null_fraction: float
    distinct: int
    min: Any | None = None
    max: Any | None = None
    mean: float | None = None
    std: float | None = None
    top: list[tuple[str, int]] = field(default_factory=list)
    min_length: int | None = None
    max_length: int | None = None
    quantiles: list[float] | None = None
    values: list[str] | None = None

    @property
    def kind(self) -> Kind | None:
        """The ``schema:`` type of the column (``int``, ``str``, ...), None if it has none."""
        return kind_of(self.type)

    def to_json(self) -> dict[str, Any]:
        """The profile as JSON-safe data (dates as ISO strings, ``top`` as ``[value, n]``)."""
        return {f.name: json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True, kw_only=True)
class TableProfile:
    """Statistics of a table: its row count and one :class:`ColumnProfile` per column."""

    rows: int
    columns: list[ColumnProfile]

    def column(self, name: str) -> ColumnProfile:
        """The profile of the column ``name``.

        Raises:
            KeyError: no column of that name (the message lists the columns).
        """
        for column in self.columns:
            if column.name == name:
                return column
        names = ", ".join(c.name for c in self.columns)
        raise KeyError(f"no column {name!r} in the profile (columns: {names})")

    def to_json(self) -> dict[str, Any]:
        """The profile as JSON-safe data: ``{"rows": n, "columns": [{...}, ...]}``."""
        return {"rows": self.rows, "columns": [c.to_json() for c in self.columns]}


def profile_relation(con: duckdb.DuckDBPyConnection, relation: str) -> TableProfile:
    """Profile a table or view of a DuckDB connection, out of core.

    Args:
        con: The connection that holds ``relation``.
        relation: Name of a table or view (quoted here, so any name works; not a query).

    Raises:
        SourceError: the relation does not exist or cannot be read (the DuckDB message says
            why, e.g. a CSV value that does not fit its column's type).
    """
    import duckdb

    source = quote(relation)
    try:
        described = con.execute(f"DESCRIBE {source}").fetchall()
        columns = [(str(row[0]), str(row[1])) for row in described]
        rows, stats = _scan_stats(con, source, columns)
        _scan_distributions(con, source, columns, rows, stats)
    except duckdb.Error as err:
        raise SourceError(f"cannot profile {relation!r}: {err}") from err
    profiles = [_column_profile(name, type_, rows, stats[name]) for name, type_ in columns]
    return TableProfile(rows=rows, columns=profiles)


def profile_parquet(path: Path) -> TableProfile:
    """Profile a Parquet file with a fresh in-memory DuckDB connection.

    Raises:
        SourceError: no such file, or it is not readable Parquet.
    """
    with parquet_views({"profiled": path}, action="profile") as con:
        return profile_relation(con, "profiled")


def parquet_views(paths: Mapping[str, Path], *, action: str) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory connection with one view per Parquet file, named by the keys.

    Raises:
        SourceError: a file is missing or not readable Parquet; the message starts with
            "cannot {action} {path}".
    """
    import duckdb

    con = connect()
    try:
        con.execute("SET enable_progress_bar = false")
        for name, path in paths.items():
            if not path.is_file():
                raise SourceError(f"cannot {action} {path}: no such file; check the path")
            literal = "'" + str(path).replace("'", "''") + "'"
            try:
                con.execute(f"CREATE VIEW {quote(name)} AS SELECT * FROM read_parquet({literal})")
            except duckdb.Error as err:
                raise SourceError(f"cannot {action} {path}: {err}") from err
    except BaseException:
        con.close()
        raise
    return con


def _scan_stats(
    con: duckdb.DuckDBPyConnection, source: str, columns: list[tuple[str, str]]
) -> tuple[int, dict[str, dict[str, Any]]]:
    """Row count, and per column a dict of statistic name → value, from one aggregate query."""
    exprs: list[tuple[str, str, str]] = [("", "rows", "count(*)")]
    for name, type_ in columns:
        col, kind = quote(name), kind_of(type_)
        exprs += [
            (name, "count", f"count({col})"),
            (name, "approx", f"approx_count_distinct({col})"),
        ]
        if kind in _NUMERIC:
            cast = f"{col}::DOUBLE" if kind == "float" else col
            exprs += [
                (name, "min", f"min({cast})"),
                (name, "max", f"max({cast})"),
                (name, "mean", f"avg({col})::DOUBLE"),
                (name, "std", f"stddev_samp({col})::DOUBLE"),
            ]
        elif type_ == _TIMESTAMPTZ:
            # Fetched as UTC wall time: DuckDB needs pytz to hand out aware datetimes.
            exprs += [
                (name, "min_utc", f"timezone('UTC', min({col}))"),
                (name, "max_utc", f"timezone('UTC', max({col}))"),
            ]
        elif kind is not None:
            exprs += [(name, "min", f"min({col})"), (name, "max", f"max({col})")]
        if kind == "str":
            exprs += [
                (name, "min_length", f"min(length({col}))"),
                (name, "max_length", f"max(length({col}))"),
            ]
    row = con.execute(f"SELECT {', '.join(e for _, _, e in exprs)} FROM {source}").fetchone()
    if row is None:  # pragma: no cover - an aggregate query always returns one row
        raise SourceError(f"profiling {source} returned no result")
    stats: dict[str, dict[str, Any]] = {name: {} for name, _ in columns}
    for (name, stat, _), value in zip(exprs[1:], row[1:], strict=True):
        if stat.endswith("_utc"):
            stat, value = stat.removesuffix("_utc"), value and value.replace(tzinfo=UTC)
        stats[name][stat] = value
    return int(row[0]), stats


def _wants_histogram(type_: str, approx_distinct: int) -> bool:
    if approx_distinct <= LOW_CARDINALITY:
        return True
    return kind_of(type_) in ("str", "bool") and approx_distinct <= HISTOGRAM_MAX_DISTINCT


def _scan_distributions(
    con: duckdb.DuckDBPyConnection,
    source: str,
    columns: list[tuple[str, str]],
    rows: int,
    stats: dict[str, dict[str, Any]],
) -> None:
    """Add exact value counts and sampled deciles to ``stats``, with one more scan.

    Value counts (value as text → count) go to ``"counts"`` for the low-cardinality columns,
    deciles to ``"quantiles"`` for the number columns.
    """
    exprs: list[tuple[str, str, str]] = []
    # DuckDB's reservoir_quantile keeps the first values it sees (wrong for sorted data), so
    # the deciles are exact ones of a Bernoulli sample taken in the same scan.
    share = min(1.0, QUANTILE_SAMPLE / rows) if rows else 1.0
    sample = "" if share >= 1 else f" FILTER (WHERE random() < {share!r})"
    deciles = ", ".join(str(q) for q in DECILES)
    for name, type_ in columns:
        if not stats[name]["count"]:
            continue
        col = quote(name)
        if _wants_histogram(type_, int(stats[name]["approx"])):
            exprs.append((name, "counts", f"histogram(CAST({col} AS VARCHAR))"))
        if kind_of(type_) in _NUMERIC:
            exprs.append((name, "quantiles", f"quantile_disc({col}::DOUBLE, [{deciles}]){sample}"))
    if not exprs:
        return
    row = con.execute(f"SELECT {', '.join(e for _, _, e in exprs)} FROM {source}").fetchone()
    if row is None:  # pragma: no cover - an aggregate query always returns one row
        raise SourceError(f"profiling {source} returned no result")
    for (name, stat, _), value in zip(exprs, row, strict=True):
        stats[name][stat] = value


def _column_profile(name: str, type_: str, rows: int, stats: dict[str, Any]) -> ColumnProfile:
    count = int(stats["count"])
    counts: dict[str, int] | None = stats.get("counts")
    kind = kind_of(type_)
    top: list[tuple[str, int]] = []
    values: list[str] | None = None
    distinct = int(stats["approx"])
    if counts is not None:
        distinct = len(counts)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        top = [(str(value), int(n)) for value, n in ranked[:TOP_VALUES]]
        if kind in ("str", "bool") and distinct <= VALUES_LIMIT:
            values = sorted(str(value) for value in counts)
    quantiles = stats.get("quantiles")
    return ColumnProfile(
        name=name,
        type=type_,
        count=count,
        nulls=rows - count,
        null_fraction=(rows - count) / rows if rows else 0.0,
        distinct=distinct,
        min=stats.get("min"),
        max=stats.get("max"),
        mean=stats.get("mean"),
        std=stats.get("std"),
        top=top,
        min_length=stats.get("min_length"),
        max_length=stats.get("max_length"),
        quantiles=[float(q) for q in quantiles] if quantiles is not None else None,
        values=values,
    )
