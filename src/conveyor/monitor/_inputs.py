"""Where the compared rows come from: Arrow tables or Parquet files, read through DuckDB.

Parquet inputs are read with ``read_parquet([...], hive_partitioning = true,
union_by_name = true)``, so a partitioned prediction log (``date=.../model_version=.../``) and
files whose columns differ read as one table. Columns are read a few at a time as float32
(numeric) or strings (categorical), streamed in Arrow batches into preallocated numpy arrays:
peak memory is the columns being compared, not the input, and pandas is never involved.

Sampling picks row positions with numpy (``default_rng([seed, side])``), sorted, then keeps
those rows from the stream. DuckDB returns rows in file order (``preserve_insertion_order``
is on), so every group of columns sees the same rows, and the same seed gives the same rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, Union

from conveyor.data._duckdb import quote_identifier as quote
from conveyor.data._duckdb import sql_string
from conveyor.errors import SourceError

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pyarrow as pa
    from numpy.typing import NDArray

__all__ = ["BATCH_ROWS", "DriftInput", "Source", "numeric_expression", "sample_positions"]

DriftInput = Union["pa.Table", str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]]
"""An Arrow table, or Parquet files: a path, a folder (every ``*.parquet`` below it), a glob,
or a list of those."""

BATCH_ROWS: Final = 262_144
"""Rows per Arrow batch streamed from DuckDB."""


def numeric_expression(expression: str) -> str:
    """SQL turning a column into float32 with NaN for null, NaN, infinite or unreadable."""
    value = f"TRY_CAST({expression} AS FLOAT)"
    return f"CASE WHEN isfinite({value}) THEN {value} ELSE 'NaN'::FLOAT END"


def sample_positions(
    total: int, max_rows: int | None, seed: int, side: int
) -> NDArray[np.int64] | None:
    """Sorted positions of ``max_rows`` rows drawn without replacement, or None for all."""
    import numpy as np

    if max_rows is None or total <= max_rows:
        return None
    rng = np.random.default_rng([seed, side])
    positions: NDArray[np.int64] = np.sort(rng.choice(total, size=max_rows, replace=False))
    return positions


class Source:
    """One side of the comparison, as a DuckDB view named ``alias`` on ``connection``."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, data: DriftInput, alias: str):
        self._con = connection
        self.alias = alias
        self.description = _describe(data)
        self._files = isinstance(data, (str, os.PathLike)) or _is_path_list(data)
        try:
            if self._files:
                paths = [data] if isinstance(data, (str, os.PathLike)) else list(data)
                files = ", ".join(sql_string(_parquet_glob(p)) for p in paths)
                connection.execute(
                    f"CREATE TEMP VIEW {quote(alias)} AS SELECT * FROM read_parquet([{files}], "
                    "hive_partitioning = true, union_by_name = true)"
                )
            else:
                connection.register(alias, data)
            described = connection.execute(f"DESCRIBE SELECT * FROM {quote(alias)}").fetchall()
        except Exception as err:  # duckdb.Error, or a type DuckDB cannot scan
            raise self.error(err) from err
        self.types: dict[str, str] = {str(row[0]): str(row[1]) for row in described}

    def error(self, err: BaseException) -> SourceError:
        """A SourceError naming this side and what DuckDB said."""
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = (
            "check that the path, folder or glob matches readable Parquet files"
            if self._files
            else "pass a pyarrow Table or Parquet paths"
        )
        return SourceError(
            f"cannot read the {self.alias} data ({self.description}): {first}; {hint}"
        )

    def count(self) -> int:
        """Rows of this side."""
        rows = self._query(f"SELECT count(*) FROM {quote(self.alias)}")
        return int(rows[0][0])

    def list_size(self, column: str) -> int:
        """The largest length of a list column's values (0 when all are null)."""
        sql = f"SELECT max(len({quote(column)})) FROM {quote(self.alias)}"
        size = self._query(sql)[0][0]
        return int(size) if size is not None else 0

    def read_numeric(
        self, expressions: Sequence[str], positions: NDArray[np.int64] | None, rows: int
    ) -> NDArray[np.float32]:
        """``(len(expressions), rows)`` float32 values (NaN for missing) of the kept rows."""
        import numpy as np

        out = np.empty((len(expressions), rows), dtype=np.float32)
        select = ", ".join(numeric_expression(e) for e in expressions)
        filled = 0
        for batch, keep in self._batches(select, positions):
            count = batch.num_rows if keep is None else len(keep)
            for j in range(len(expressions)):
                values = batch.column(j).to_numpy()
                out[j, filled : filled + count] = values if keep is None else values[keep]
            filled += count
        if filled != rows:
            raise SourceError(
                f"the {self.alias} data ({self.description}) changed while being read: "
                f"expected {rows:,} rows, read {filled:,}; compare again"
            )
        return out

    def read_categorical(
        self, expression: str, positions: NDArray[np.int64] | None
    ) -> tuple[dict[str, int], int]:
        """Counts of each value of ``expression`` over the kept rows, and of missing ones."""
        from conveyor.monitor._categorical import value_counts

        value = f"CAST({expression} AS VARCHAR)"
        if positions is None:  # count in DuckDB, nothing materialised
            sql = f"SELECT {value} AS v, count(*) FROM {quote(self.alias)} GROUP BY ALL"
            counts: dict[str, int] = {}
            missing = 0
            for key, n in self._query(sql):
                if key is None:
                    missing = int(n)
                else:
                    counts[str(key)] = int(n)
            return counts, missing
        import pyarrow as pa

        chunks = [batch.column(0).take(keep) for batch, keep in self._batches(value, positions)]
        return value_counts(pa.chunked_array(chunks, type=pa.string()))

    def _batches(
        self, select: str, positions: NDArray[np.int64] | None
    ) -> Iterator[tuple[pa.RecordBatch, NDArray[np.int64] | None]]:
        """Arrow batches of ``SELECT select``, each with the positions in it to keep."""
        import numpy as np

        try:
            reader = self._con.sql(f"SELECT {select} FROM {quote(self.alias)}").to_arrow_reader(
                BATCH_ROWS
            )
        except Exception as err:
            raise self.error(err) from err
        offset = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except Exception as err:
                raise self.error(err) from err
            start, offset = offset, offset + batch.num_rows
            if positions is None:
                yield batch, None
            else:
                lo, hi = np.searchsorted(positions, [start, offset])
                yield batch, positions[lo:hi] - start

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self._con.sql(sql).fetchall()
        except Exception as err:
            raise self.error(err) from err


def _is_path_list(data: object) -> bool:
    return (
        isinstance(data, Sequence)
        and not isinstance(data, str)
        and len(data) > 0
        and all(isinstance(p, (str, os.PathLike)) for p in data)
    )


def _parquet_glob(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    return os.path.join(text, "**", "*.parquet") if os.path.isdir(text) else text


def _describe(data: object) -> str:
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data)
    if _is_path_list(data):
        paths = [os.fspath(p) for p in data]  # type: ignore[attr-defined]
        return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    return f"a {type(data).__name__}"
