"""Which columns are compared, how (numeric or categorical), and where each side keeps them.

A column has one name, the reference's (``x``); on the current side it is looked up as
``rename[x]`` when given, else ``current_prefix + x`` and then ``x`` (so a prediction log's
``in_x`` and ``out_prediction`` are both found with ``current_prefix="in_"``). An element of
a list column is named ``name[i]`` (1-based, as DuckDB indexes).

When the columns are not given, every reference column found on the current side is compared,
its kind read from its type: integers, floats and decimals are numeric; strings, booleans and
enums categorical; lists of numbers (class probabilities) are split into one numeric column
per element, except that of two elements only the second (the positive class) is kept. Other
types (dates, timestamps, structs, blobs) and the prediction log's own metadata columns
(:data:`LOG_COLUMNS`) are skipped, with the reason in the report.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from conveyor.data._duckdb import quote_identifier as quote
from conveyor.errors import SourceError
from conveyor.monitor._report import ColumnKind
from conveyor.spec._base import did_you_mean

__all__ = ["LOG_COLUMNS", "Column", "kind_of", "plan_columns"]

LOG_COLUMNS: Final = frozenset(
    {
        "request_id",
        "row",
        "timestamp",
        "model_name",
        "model_version",
        "latency_ms",
        "shadow",
        "date",
    }
)
"""Metadata of the prediction log (and its partitions), never compared unless named."""

_NUMERIC: Final = re.compile(
    r"(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT"
    r"|FLOAT|DOUBLE|DECIMAL\(\d+,\s*\d+\))"
)
_CATEGORICAL: Final = re.compile(r"VARCHAR|BOOLEAN|ENUM\(.*\)")
_LIST: Final = re.compile(r"(?P<element>.+)\[(?P<size>\d*)\]")
_ELEMENT: Final = re.compile(r"(?P<column>.+)\[(?P<index>\d+)\]")


@dataclass(frozen=True)
class Column:
    """One compared column: its name, kind, and the SQL that reads it on each side."""

    name: str
    kind: ColumnKind
    reference: str
    current: str
    current_name: str


def kind_of(duckdb_type: str) -> ColumnKind | None:
    """``numeric``/``categorical`` for a DuckDB type, None for types that are not compared."""
    if _NUMERIC.fullmatch(duckdb_type):
        return "numeric"
    if _CATEGORICAL.fullmatch(duckdb_type):
        return "categorical"
    return None


def plan_columns(
    reference: Mapping[str, str],
    current: Mapping[str, str],
    *,
    columns: Mapping[str, ColumnKind] | Sequence[str] | None,
    current_prefix: str,
    rename: Mapping[str, str],
    list_size: Callable[[str], int],
) -> tuple[list[Column], dict[str, str]]:
    """The columns to compare and the ones skipped (name -> why).

    Args:
        reference: DuckDB type of each reference column.
        current: DuckDB type of each current column.
        columns: Columns to compare, with their kinds or with kinds read from their types;
            None for every column the two sides share.
        current_prefix: Prefix of the columns on the current side (``in_`` for the log).
        rename: Current-side name of reference columns, where prefixing is not enough.
        list_size: Elements of a reference list column (to split it when inferring).

    Raises:
        SourceError: a named column is missing from a side or has a type that cannot be
            compared, or no column is left to compare.
    """
    explicit = columns is not None
    skipped: dict[str, str] = {}
    if columns is None:
        for name in LOG_COLUMNS.intersection(reference):
            skipped[name] = "prediction-log metadata (name it in the columns to compare it)"
        names = _expand_lists([n for n in reference if n not in LOG_COLUMNS], reference, list_size)
        kinds: Mapping[str, ColumnKind] = {}
    elif isinstance(columns, Mapping):
        names, kinds = list(columns), columns
    else:
        names, kinds = list(columns), {}
    planned = []
    for name in names:
        ref = _locate(reference, [name])
        candidates = [rename[name]] if name in rename else [current_prefix + name, name]
        cur = _locate(current, list(dict.fromkeys(candidates)))
        if ref is None:
            raise SourceError(
                f"the reference has no column {name!r}{did_you_mean(name, reference)}; it has "
                f"{_listing(reference)}"
            )
        if cur is None:
            looked = " or ".join(repr(c) for c in dict.fromkeys(candidates))
            if explicit:
                hint = did_you_mean(candidates[0], current)
                raise SourceError(
                    f"the current data has no column {looked}{hint}; it has "
                    f"{_listing(current)} (pass current_prefix= or rename= to map names)"
                )
            skipped[name] = f"not in the current data (looked for {looked})"
            continue
        kind = kinds.get(name) or kind_of(ref[1])
        if kind is None:
            if explicit:
                raise SourceError(
                    f"column {name!r} has type {ref[1]}, which is neither numeric nor "
                    "categorical; give its kind (columns={name: 'categorical'}) or leave it out"
                )
            skipped[name] = f"type {ref[1]} is not compared"
            continue
        planned.append(Column(name, kind, ref[0], cur[0], cur[2]))
    if not planned:
        raise SourceError(
            "the reference and the current data share no column to compare (reference: "
            f"{_listing(reference)}; current: {_listing(current)}); pass current_prefix='in_' "
            "for a prediction log, or name the columns"
        )
    return planned, skipped


def _expand_lists(
    names: list[str], types: Mapping[str, str], list_size: Callable[[str], int]
) -> list[str]:
    out = []
    for name in names:
        match = _LIST.fullmatch(types[name])
        if match is None or kind_of(match["element"]) != "numeric":
            out.append(name)
            continue
        size = int(match["size"]) if match["size"] else list_size(name)
        first = 2 if size == 2 else 1
        out += [f"{name}[{i}]" for i in range(first, size + 1)]
    return out


def _locate(types: Mapping[str, str], candidates: list[str]) -> tuple[str, str, str] | None:
    """(SQL expression, DuckDB type, name) of the first candidate a side has."""
    for name in candidates:
        if name in types:
            return quote(name), types[name], name
        element = _ELEMENT.fullmatch(name)
        if element is not None and element["column"] in types:
            listed = _LIST.fullmatch(types[element["column"]])
            if listed is not None:
                sql = f"{quote(element['column'])}[{int(element['index'])}]"
                return sql, listed["element"], name
    return None


def _listing(types: Mapping[str, str], limit: int = 12) -> str:
    names = list(types)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "") or "none"
