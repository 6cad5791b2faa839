"""Python values (database rows, JSON records) to Arrow columns, batch by batch.

Database rows: each column's Arrow type is fixed by its first batch (the values' Python types,
or the driver's declared type for a column that is all NULL there) and every later batch is
converted to it, so one Parquet file holds the whole result.

============================  ==========================================================
Python values                 Arrow type
============================  ==========================================================
bool                          bool
int                           int64
float, Decimal, int + float   float64 (exact decimals are rarely what a model needs;
                              CAST to text in the query to keep them exact)
str, UUID, dict, list, other  string (dict and list as JSON text)
datetime (naive / aware)      timestamp[us] / timestamp[us, UTC]
date, time                    date32, time64[us]
timedelta                     float64 seconds
bytes, memoryview             binary
============================  ==========================================================

JSON records: each batch is typed on its own (pyarrow's inference, so objects become structs
and arrays lists); a field whose values cannot share one type within the batch becomes text.
Batches are reconciled when read (see ``HttpJsonSource``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ColumnTypeError", "RowColumns", "postgres_kind", "records_table", "to_text"]

Convert = Callable[[Any], Any]

# PostgreSQL type OIDs (the type_code every PostgreSQL driver reports) -> kind, used for columns
# that are NULL throughout the first batch, and for empty results.
_POSTGRES_KINDS: Final = {
    16: "bool",
    17: "bytes",
    20: "int",
    21: "int",
    23: "int",
    26: "int",
    700: "float",
    701: "float",
    1700: "float",
    25: "text",
    1043: "text",
    1042: "text",
    19: "text",
    1082: "date",
    1083: "time",
    1114: "datetime",
    1184: "datetime_tz",
    1186: "interval",
}


class ColumnTypeError(ValueError):
    """A value does not fit the type its column got from earlier rows."""

    def __init__(self, column: str, row: int, expected: str, value: Any) -> None:
        self.column = column
        self.row = row
        super().__init__(
            f"column {column!r} changed type at row {row}: earlier rows made it {expected}, "
            f"but this row holds a {type(value).__name__} ({_preview(value)})"
        )


class RowColumns:
    """Turns batches of database rows into Arrow record batches with one fixed schema."""

    def __init__(self, names: Sequence[str], hints: Sequence[str | None]) -> None:
        """Remember the column names and each column's declared kind (None when unknown).

        Use :func:`postgres_kind` or the DB-API ``NUMBER`` type object to find the hints.
        """
        self.names = list(names)
        self._hints = list(hints)
        self._plans: list[tuple[pa.DataType, Convert | None]] | None = None
        self._rows_done = 0

    def schema(self, first_rows: Sequence[Sequence[Any]]) -> pa.Schema:
        """Fix the schema from the first batch (possibly empty) and the hints."""
        import pyarrow as pa

        plans = self._fix_plans(first_rows)
        return pa.schema([(name, plan[0]) for name, plan in zip(self.names, plans, strict=True)])

    def batch(self, rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
        """Rows as a record batch of the fixed schema (fixed by these rows if not yet).

        Raises:
            ColumnTypeError: A value cannot be converted to its column's type.
        """
        import pyarrow as pa

        arrays = []
        for index, (arrow_type, convert) in enumerate(self._fix_plans(rows)):
            values = [row[index] for row in rows]
            if convert is not None:
                values = [None if value is None else convert(value) for value in values]
            try:
                arrays.append(pa.array(values, type=arrow_type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as err:
                row, bad = _first_misfit(values, arrow_type)
                raise ColumnTypeError(
                    self.names[index], self._rows_done + row + 1, str(arrow_type), bad
                ) from err
        self._rows_done += len(rows)
        return pa.RecordBatch.from_arrays(arrays, names=self.names)

    def _fix_plans(self, rows: Sequence[Sequence[Any]]) -> list[tuple[pa.DataType, Convert | None]]:
        if self._plans is None:
            self._plans = [
                _plan(_kind([row[index] for row in rows], self._hints[index]))
                for index in range(len(self.names))
            ]
        return self._plans


def postgres_kind(type_code: Any) -> str | None:
    """The kind of a PostgreSQL column from its type OID; None when unknown."""
    return _POSTGRES_KINDS.get(type_code) if isinstance(type_code, int) else None


def _kind(values: list[Any], hint: str | None) -> str:
    kinds = {_value_kind(value) for value in values if value is not None}
    if not kinds:
        return hint or "text"
    if len(kinds) == 1:
        return kinds.pop()
    if kinds <= {"int", "float"}:
        return "float"
    return "text"


def _value_kind(value: Any) -> str:
    # Order matters: bool is an int, datetime is a date.
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float | Decimal):
        return "float"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dt.datetime):
        return "datetime" if value.tzinfo is None else "datetime_tz"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dt.time):
        return "time"
    if isinstance(value, dt.timedelta):
        return "interval"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    return "other"


def _plan(kind: str) -> tuple[pa.DataType, Convert | None]:
    import pyarrow as pa

    plans: dict[str, tuple[pa.DataType, Convert | None]] = {
        "bool": (pa.bool_(), None),
        "int": (pa.int64(), None),
        "float": (pa.float64(), _to_float),
        "datetime": (pa.timestamp("us"), None),
        "datetime_tz": (pa.timestamp("us", tz="UTC"), None),
        "date": (pa.date32(), None),
        "time": (pa.time64("us"), None),
        "interval": (pa.float64(), _seconds),
        "bytes": (pa.binary(), bytes),
    }
    return plans.get(kind, (pa.string(), to_text))


def _to_float(value: Any) -> Any:
    # bool is excluded so a stray True in a float column is reported, not silently 1.0.
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return float(value)
    return value


def _seconds(value: Any) -> Any:
    return value.total_seconds() if isinstance(value, dt.timedelta) else value


def to_text(value: Any) -> str:
    """A value as text: strings as they are, objects and arrays as JSON, others via str()."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple | bool) or value is None:
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _first_misfit(values: list[Any], arrow_type: pa.DataType) -> tuple[int, Any]:
    import pyarrow as pa

    for row, value in enumerate(values):
        try:
            pa.array([value], type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
            return row, value
    return 0, values[0] if values else None


def _preview(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def records_table(records: Sequence[dict[str, Any]]) -> pa.Table:
    """JSON objects as a table: one column per field, in order of first appearance.

    A missing field is null. A field whose values cannot share one Arrow type (``1`` and
    ``"a"``, an object and a number, an empty object, an integer beyond 64 bits) becomes text.
    """
    import pyarrow as pa

    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    columns = {}
    for name in names:
        values = [record.get(name) for record in records]
        try:
            column = pa.array(values)
            if _has_empty_struct(column.type):  # Parquet cannot store a struct with no fields
                raise pa.ArrowInvalid("empty struct")
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            column = pa.array(
                [None if value is None else to_text(value) for value in values], type=pa.string()
            )
        columns[name] = column
    return pa.table(columns)


def _has_empty_struct(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_struct(arrow_type):
        return arrow_type.num_fields == 0 or any(
            _has_empty_struct(arrow_type.field(index).type)
            for index in range(arrow_type.num_fields)
        )
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return _has_empty_struct(arrow_type.value_type)
    return False
