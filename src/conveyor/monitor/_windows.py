"""Consecutive windows of the prediction log: the monitoring loop's unit of work.

Windows are cut by count, in time order: the ``size`` oldest served (non-shadow) predictions
logged after the previous window's last timestamp. Only predictions older than ``settle_s``
seconds are counted, because replicas flush their logs every second or two and a file written
late must not land behind a window already judged. A new window starts where the last stored
drift run ended (its ``window_end``), so a restarted controller goes on where it stood.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from conveyor.data._duckdb import connect, sql_string
from conveyor.errors import SourceError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["SETTLE_S", "LogWindow", "next_window"]

SETTLE_S: Final = 5.0
"""Seconds a prediction must have been logged before it is counted in a window."""


@dataclass(frozen=True)
class LogWindow:
    """One window of served predictions.

    Attributes:
        table: The rows (every logged column), oldest first.
        start: Timestamp of its first prediction.
        end: Timestamp of its last prediction.
        model_version: The version that answered most of its rows.
        pending: Settled predictions after this window, not yet in any window.
    """

    table: pa.Table
    start: datetime
    end: datetime
    model_version: int | None
    pending: int


def next_window(
    artifacts_url: str,
    size: int,
    *,
    after: datetime | None,
    now: datetime,
    settle_s: float = SETTLE_S,
) -> LogWindow | None:
    """The ``size`` oldest served predictions logged after ``after``, or None if fewer settled.

    Raises:
        SourceError: The log exists but cannot be read.
    """
    log = f"{artifacts_url.rstrip('/')}/predictions"
    if "://" not in log and not any(Path(log).glob("**/*.parquet")):
        return None
    source = (
        f"read_parquet({sql_string(f'{log}/**/*.parquet')}, hive_partitioning = true, "
        "union_by_name = true)"
    )
    until = now - timedelta(seconds=settle_s)
    where = "NOT coalesce(shadow, false) AND timestamp <= $until"
    params: dict[str, object] = {"until": until}
    if after is not None:
        where += " AND timestamp > $after"
        params["after"] = after
    con = connect()
    try:
        found = con.sql(f"SELECT count(*) FROM {source} WHERE {where}", params=params)
        settled = int(found.fetchall()[0][0])
        if settled < size:
            return None
        query = f"SELECT * FROM {source} WHERE {where} ORDER BY timestamp LIMIT {int(size)}"
        table: pa.Table = con.sql(query, params=params).to_arrow_table()
    except Exception as err:  # duckdb.Error
        raise SourceError(f"cannot read the prediction log under {log}: {err}") from err
    finally:
        con.close()
    stamps = table.column("timestamp")
    start, end = stamps[0].as_py(), stamps[-1].as_py()
    return LogWindow(
        table=table,
        start=start,
        end=end,
        model_version=_majority(table),
        pending=settled - table.num_rows,
    )


def _majority(table: pa.Table) -> int | None:
    if "model_version" not in table.column_names:
        return None
    import pyarrow.compute as pc

    counts = pc.value_counts(table.column("model_version")).to_pylist()
    if not counts:
        return None
    best = max(counts, key=lambda item: item["counts"])
    value = best["values"]
    return None if value is None else int(value)
