"""What a DuckDB column type means for profiling: its kind, and values made JSON-safe."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final, Literal

__all__ = ["Kind", "json_value", "kind_of"]

Kind = Literal["int", "float", "str", "bool", "date", "datetime"]
"""The logical kinds of ``schema:`` (see :class:`conveyor.spec.ColumnType`)."""

_KINDS: Final[dict[str, Kind]] = {
    **dict.fromkeys(
        (
            "TINYINT",
            "SMALLINT",
            "INTEGER",
            "BIGINT",
            "HUGEINT",
            "UTINYINT",
            "USMALLINT",
            "UINTEGER",
            "UBIGINT",
            "UHUGEINT",
        ),
        "int",
    ),
    "FLOAT": "float",
    "DOUBLE": "float",
    "VARCHAR": "str",
    "BOOLEAN": "bool",
    "DATE": "date",
    **dict.fromkeys(
        (
            "TIMESTAMP",
            "TIMESTAMP WITH TIME ZONE",
            "TIMESTAMP_S",
            "TIMESTAMP_MS",
            "TIMESTAMP_NS",
        ),
        "datetime",
    ),
}
_DECIMAL = re.compile(r"DECIMAL\(\d+,\s*\d+\)")


def kind_of(duckdb_type: str) -> Kind | None:
    """The logical kind of a DuckDB type, or None for types ``schema:`` cannot describe.

    ``DECIMAL(p,s)`` is a float and ``ENUM(...)`` a str; nested types (lists, structs, maps),
    ``TIME``, ``INTERVAL``, ``BLOB`` and ``UUID`` have no kind.
    """
    if duckdb_type in _KINDS:
        return _KINDS[duckdb_type]
    if _DECIMAL.fullmatch(duckdb_type):
        return "float"
    if duckdb_type.startswith("ENUM("):
        return "str"
    return None


def json_value(value: Any) -> Any:
    """``value`` as something :func:`json.dumps` writes as strict JSON.

    Dates and times become ISO 8601 strings, decimals floats, and non-finite floats the
    strings ``"nan"``, ``"inf"`` and ``"-inf"`` (strict JSON has no such numbers).
    """
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return str(value)
