"""Writing the clean and quarantine files so the same rows always give the same bytes.

The outputs are content-addressed by the caller, so the layout must not depend on anything but
the rows: row groups have a fixed size whatever the batch size used to read the input, no
schema metadata is carried over (pandas' index metadata would describe the wrong rows), and
files appear under their final name only once complete.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = [
    "REASONS_COLUMN",
    "ROW_GROUP_ROWS",
    "ParquetSink",
    "reason_type",
    "reasons",
    "text_columns",
    "texts",
]

REASONS_COLUMN = "_quarantine_reasons"
ROW_GROUP_ROWS = 131_072


def reason_type() -> pa.DataType:
    """``list<struct<column: string, check: string, value: string>>``."""
    import pyarrow as pa

    fields = [("column", pa.string()), ("check", pa.string()), ("value", pa.string())]
    return pa.list_(pa.struct(fields))


def text_columns(schema: pa.Schema) -> list[str]:
    """The top-level text and binary columns: the ones worth dictionary encoding.

    Trying a dictionary on every column doubled the time to write 2M rows of mostly numbers
    (1.5 s instead of 0.8 s with zstd) and made the file larger (60 MB instead of 52 MB).
    """
    import pyarrow as pa

    kinds = (
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_binary,
        pa.types.is_dictionary,
    )
    return [field.name for field in schema if any(kind(field.type) for kind in kinds)]


class ParquetSink:
    """A Parquet file written incrementally with fixed-size row groups.

    Nothing exists at ``path`` until :meth:`close`; a file without rows still holds the schema.
    ``dictionary`` is passed to :class:`pyarrow.parquet.ParquetWriter` as ``use_dictionary``.
    """

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        *,
        dictionary: bool | list[str] = True,
        row_group_rows: int = ROW_GROUP_ROWS,
    ) -> None:
        self.path = path
        self._dictionary = dictionary
        self.rows = 0
        self._partial = path.with_name(path.name + ".partial")
        self._schema = schema.remove_metadata()
        self._row_group_rows = row_group_rows
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, rows: pa.Table) -> None:
        """Append ``rows`` (same columns as the schema)."""
        if not rows.num_rows:
            return
        self._buffer.append(rows.replace_schema_metadata(None))
        self._buffered += rows.num_rows
        self.rows += rows.num_rows
        if self._buffered >= self._row_group_rows:
            self._flush(final=False)

    def close(self) -> Path:
        """Write the remaining rows and move the file to its final name."""
        self._flush(final=True)
        self._open().close()
        os.replace(self._partial, self.path)
        return self.path

    def abort(self) -> None:
        """Drop what was written."""
        if self._writer is not None:
            self._writer.close()
        self._partial.unlink(missing_ok=True)

    def _open(self) -> pq.ParquetWriter:
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(
                self._partial,
                self._schema,
                compression="zstd",
                use_dictionary=self._dictionary,
            )
        return self._writer

    def _flush(self, *, final: bool) -> None:
        import pyarrow as pa

        if not self._buffer:
            return
        table = pa.concat_tables(self._buffer)
        size = self._row_group_rows
        full = len(table) - len(table) % size
        end = len(table) if final else full
        for start in range(0, end, size):
            chunk = table.slice(start, min(size, end - start))
            self._open().write_table(chunk, row_group_size=size)
        rest = table.slice(end)
        self._buffer = [rest] if len(rest) else []
        self._buffered = len(rest)


def texts(array: pa.Array, positions: npt.NDArray[np.int64]) -> pa.Array:
    """The values at ``positions`` as text, as a person would write them (nulls stay null)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    taken = array.take(pa.array(positions, pa.int64()))
    if pa.types.is_dictionary(taken.type):
        taken = taken.dictionary_decode()
    if not pa.types.is_temporal(taken.type) and not pa.types.is_nested(taken.type):
        try:
            return pc.cast(taken, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return pa.array([_text(value) for value in taken.to_pylist()], pa.string())


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def reasons(
    bad: npt.NDArray[np.int64],
    broken: Sequence[tuple[str, str, npt.NDArray[np.int64], pa.Array]],
) -> pa.Array:
    """The ``_quarantine_reasons`` of the rows at positions ``bad`` (ascending).

    Args:
        bad: Positions of the failing rows in the batch.
        broken: ``(column, check, positions, values as text)`` for each check that failed, in
            report order; a row's reasons keep that order.
    """
    import numpy as np
    import pyarrow as pa

    kind = reason_type()
    if not broken:
        return pa.array([[] for _ in bad], kind)
    rows = np.concatenate([positions for _, _, positions, _ in broken])
    order = np.argsort(rows, kind="stable")
    labels = pa.array([part for column, check, _, _ in broken for part in (column, check)])
    which = np.repeat(np.arange(len(broken)), [len(positions) for _, _, positions, _ in broken])
    columns = labels.take(pa.array(2 * which[order]))
    checks = labels.take(pa.array(2 * which[order] + 1))
    values = pa.concat_arrays([values for _, _, _, values in broken]).take(pa.array(order))
    entries = pa.StructArray.from_arrays([columns, checks, values], fields=list(kind.value_type))
    offsets = np.append(np.searchsorted(rows[order], bad, side="left"), len(rows))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), entries, type=kind)
