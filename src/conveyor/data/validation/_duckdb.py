"""DuckDB over the whole file: the ``dataset`` view and the rows holding duplicated values.

Checks that look at every row at once (``unique`` columns, ``unique_key``, custom SQL) run in
DuckDB, out of core, instead of in the batch loop. Duplicated rows are streamed back in file
order so the batch loop can quarantine them without holding all their numbers in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.data._duckdb import connect, sql_string
from conveyor.data._duckdb import quote_identifier as quote

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import numpy.typing as npt

__all__ = ["DuplicateRows", "open_dataset"]

_STREAM_ROWS = 65_536


def open_dataset(parquet: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection where ``dataset`` is a view over ``parquet``."""
    con = connect(parquet.parent)
    con.execute(
        f"create view dataset as select * from read_parquet({sql_string(parquet)})"
    )  # a view's definition cannot take a bound parameter
    return con


class DuplicateRows:
    """Row numbers (0-based, in file order) whose value in ``column`` occurs more than once.

    Missing values (null, and NaN in float columns) are never duplicates. Values are compared
    as stored, before any cast to the declared type. Call :meth:`take` with ascending,
    adjacent ranges, one per batch.
    """

    def __init__(
        self, con: duckdb.DuckDBPyConnection, parquet: Path, column: str, *, is_float: bool
    ) -> None:
        value = quote(column)
        present = f"{value} is not null" + (f" and not isnan({value})" if is_float else "")
        query = f"""
            with rows as (
                select file_row_number as __conveyor_row, {value}
                from read_parquet($path, file_row_number = true)
                where {present}
            ),
            repeated as (select {value} from rows group by all having count(*) > 1)
            select __conveyor_row from rows semi join repeated using ({value})
            order by __conveyor_row
        """
        self._cursor = con.cursor()
        relation = self._cursor.sql(query, params={"path": str(parquet)})
        self._reader: Any = relation.to_arrow_reader(_STREAM_ROWS)
        self._pending: list[npt.NDArray[np.int64]] = []
        self._done = False

    def take(self, start: int, stop: int) -> npt.NDArray[np.int64]:
        """Duplicated rows in ``[start, stop)``, as positions relative to ``start``."""
        import numpy as np

        while not self._done and (not self._pending or self._pending[-1][-1] < stop):
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                self._done = True
                break
            if batch.num_rows:
                self._pending.append(batch.column(0).to_numpy().astype(np.int64))
        rows = np.concatenate(self._pending) if self._pending else np.empty(0, np.int64)
        cut = int(np.searchsorted(rows, stop, side="left"))
        self._pending = [rows[cut:]] if cut < len(rows) else []
        inside = rows[:cut]
        return inside[inside >= start] - start

    def close(self) -> None:
        """Release the DuckDB cursor."""
        self._cursor.close()
