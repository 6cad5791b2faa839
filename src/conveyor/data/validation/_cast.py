"""Reading a stored column as the type the schema declares, value by value.

A Parquet column's physical type may differ from the declared one (a CSV read as text gives
strings where ints are expected). Each value is cast on its own: a value that does not parse
becomes missing in the cast column and is reported as a ``type`` failure, so one bad cell
quarantines one row, not the table. The stored data is never changed: clean rows keep the
input's physical types. The rules, by declared type:

* ``int``: integers; floats and decimals with no fractional part; strings that parse as such a
  number (``" 12"``, ``"1e3"``). Booleans, dates and anything else fail.
* ``float``: integers, floats, decimals, numeric strings (``"nan"`` reads as missing).
* ``bool``: booleans; the numbers 0 and 1; ``true/false/t/f/yes/no/1/0`` in any case.
* ``str``: strings; any other scalar is read as its text (``7`` → ``"7"``). Lists, structs and
  bytes that are not UTF-8 fail.
* ``date``: dates; timestamps at midnight; ``YYYY-MM-DD`` strings.
* ``datetime``: timestamps; dates (at midnight); ISO 8601 strings (mixed offsets read as UTC).

Missing values (null, and NaN in float columns) never fail here: ``nullable`` judges them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from conveyor.spec import ColumnType

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    import pyarrow as pa

__all__ = ["Cast", "cast_column", "missing_mask"]

_TRUE = frozenset({"true", "t", "yes", "1"})
_FALSE = frozenset({"false", "f", "no", "0"})
_INT64_LIMIT = 2.0**63


class Cast(NamedTuple):
    """A column read as its declared type, and which values could not be read."""

    values: pd.Series
    failed: npt.NDArray[np.bool_]


def missing_mask(array: pa.Array) -> npt.NDArray[np.bool_]:
    """Which values are missing: null, or NaN in a float column (pandas' notion of missing)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_floating(array.type):
        mask = pc.fill_null(pc.or_(pc.is_null(array), pc.is_nan(array)), True)
    else:
        mask = pc.is_null(array)
    result: npt.NDArray[np.bool_] = mask.to_numpy(zero_copy_only=False)
    return result


def cast_column(array: pa.Array, declared: ColumnType) -> Cast:
    """Read ``array`` as ``declared``; values that do not parse are missing and flagged failed.

    The returned series has a fresh ``RangeIndex`` matching the array's positions.
    """
    import pyarrow as pa

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    missing = missing_mask(array)
    values, parsed = _CASTS[declared](array)
    failed = ~missing & ~parsed if parsed is not None else ~missing & values.isna().to_numpy()
    return Cast(values, failed)


# Each reader returns the cast series and a mask of the values that parsed, or None when every
# value that is present in the input parsed unless it became missing in the cast.
_Read = tuple["pd.Series", "npt.NDArray[np.bool_] | None"]


def _unreadable(array: pa.Array, dtype: str) -> _Read:
    import numpy as np
    import pandas as pd

    return pd.Series([None] * len(array), dtype=dtype), np.zeros(len(array), bool)


def _is_text(array: pa.Array) -> bool:
    import pyarrow as pa

    kind = array.type
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _is_number(array: pa.Array) -> bool:
    import pyarrow as pa

    kind = array.type
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def _text_numbers(array: pa.Array) -> pd.Series:
    import pandas as pd

    numbers: pd.Series = pd.to_numeric(array.to_pandas().str.strip(), errors="coerce")
    return numbers.astype("float64")


def _read_int(array: pa.Array) -> _Read:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(array.type) and array.type != pa.uint64():
        ints = pc.cast(array, pa.int64()).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
        return ints.reset_index(drop=True), None
    if _is_number(array):
        floats = pc.cast(array, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    elif _is_text(array):
        floats = _text_numbers(array).to_numpy()
    else:
        return _unreadable(array, "Int64")
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(floats) & (floats == np.floor(floats)) & (np.abs(floats) < _INT64_LIMIT)
    data = np.where(whole, floats, 0).astype(np.int64)
    return pd.Series(pd.arrays.IntegerArray(data, ~whole)), whole


def _read_float(array: pa.Array) -> _Read:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if _is_number(array):
        floats = pc.cast(array, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        return pd.Series(floats), np.ones(len(array), bool)
    if _is_text(array):
        text = array.to_pandas().str.strip()
        numbers = _text_numbers(array)
        return numbers, numbers.notna().to_numpy() | (text.str.lower() == "nan").to_numpy()
    return _unreadable(array, "float64")


def _read_bool(array: pa.Array) -> _Read:
    import pandas as pd
    import pyarrow as pa

    if pa.types.is_boolean(array.type):
        return array.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get), None
    if _is_number(array):
        floats = pd.Series(_read_float(array)[0])
        truth = floats.map({1.0: True, 0.0: False}).astype("boolean")
        return truth, None
    if _is_text(array):
        text = array.to_pandas().str.strip().str.lower()
        truth = text.map(dict.fromkeys(_TRUE, True) | dict.fromkeys(_FALSE, False))
        return truth.astype("boolean"), None
    return _unreadable(array, "boolean")


def _read_str(array: pa.Array) -> _Read:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if _is_text(array):
        return array.to_pandas(), None
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        texts: list[str | None] = []
        for raw in array.to_pylist():
            try:
                texts.append(None if raw is None else raw.decode("utf-8"))
            except UnicodeDecodeError:
                texts.append(None)
        return pd.Series(texts, dtype="str"), None
    if pa.types.is_nested(array.type):
        return _unreadable(array, "str")
    if pa.types.is_temporal(array.type):
        stamps = [None if value is None else str(value) for value in array.to_pylist()]
        return pd.Series(stamps, dtype="str"), np.ones(len(array), bool)
    return pc.cast(array, pa.string()).to_pandas(), np.ones(len(array), bool)


def _read_date(array: pa.Array) -> _Read:
    import pandas as pd
    import pyarrow as pa

    if pa.types.is_date(array.type):
        return array.to_pandas(date_as_object=True), None
    if pa.types.is_timestamp(array.type):
        stamps = array.to_pandas()
        midnight = stamps == stamps.dt.normalize()
        return stamps.dt.date.where(midnight, None), midnight.to_numpy()
    if _is_text(array):
        parsed = pd.to_datetime(array.to_pandas(), format="%Y-%m-%d", errors="coerce")
        return parsed.dt.date.astype(object).where(parsed.notna(), None), None
    return _unreadable(array, "object")


def _read_datetime(array: pa.Array) -> _Read:
    import pandas as pd
    import pyarrow as pa

    if pa.types.is_timestamp(array.type):
        return array.to_pandas(), None
    if pa.types.is_date(array.type):
        return pd.to_datetime(array.to_pandas(date_as_object=True)), None
    if _is_text(array):
        text = array.to_pandas()
        try:
            return pd.to_datetime(text, format="ISO8601", errors="coerce"), None
        except (TypeError, ValueError):  # offsets that differ between values
            return pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True), None
    return _unreadable(array, "datetime64[us]")


_CASTS = {
    ColumnType.int: _read_int,
    ColumnType.float: _read_float,
    ColumnType.bool: _read_bool,
    ColumnType.str: _read_str,
    ColumnType.date: _read_date,
    ColumnType.datetime: _read_datetime,
}
