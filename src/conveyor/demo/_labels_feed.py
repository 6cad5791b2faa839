"""Labels that arrive late: a replayed flight's outcome becomes known some hours after it flew.

The demo replays flights as live traffic and feeds their labels back with a delay, as an
airline learns of a late arrival only once the flight has landed. :class:`LabelFeed` keeps
every flight sent (its key in the prediction log, its label and its scheduled time) and
hands out, each time the replay's clock moves on, the labels that have become known.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    import pyarrow as pa

    from conveyor.demo._traffic import ReplayResult

__all__ = ["LABEL_COLUMNS", "LabelFeed", "write_labels"]

LABEL_COLUMNS: Final = ("request_id", "row", "label")
"""The columns of a labels file: a prediction's key in the prediction log and its label."""
_FORMATS: Final = {".csv": "csv", ".parquet": "parquet"}


class LabelFeed:
    """The labels of flights sent, released once ``delay`` has passed since each one's time.

    A flight counts from its scheduled departure hour (``time_hour``), so ``delay`` should
    cover the flight itself and the time its outcome takes to be recorded. Flights whose
    request failed (any status but 200) are not in the prediction log and are left out.
    Not thread-safe.

    Args:
        folder: Where :meth:`write_due` writes label files (created when needed).
        delay: How long after its time a flight's label becomes known.
    """

    def __init__(self, folder: Path, *, delay: timedelta = timedelta(hours=6)) -> None:
        if delay < timedelta(0):
            raise ConveyorError(f"the label delay must not be negative, got {delay}")
        self.folder = Path(folder)
        self.delay = delay
        self._pending: list[pa.Table] = []
        self._files = 0

    def add(
        self,
        flights: pa.Table,
        sent: ReplayResult,
        *,
        id_column: str = "flight_id",
        label_column: str = "delayed",
        time_column: str = "time_hour",
    ) -> int:
        """Keep the flights of a replay until their labels are due.

        Args:
            flights: The rows replayed, with their id, label and time (``replay_rows``).
            sent: The replay's result: each flight's ``(request_id, row)`` and whether it was
                answered.

        Returns:
            The flights kept (those whose request was answered with status 200).

        Raises:
            ConveyorError: A column is missing, or a flight of ``sent`` is not in ``flights``.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        missing = [
            c for c in (id_column, label_column, time_column) if c not in flights.schema.names
        ]
        if missing:
            raise ConveyorError(
                f"the flights table has no column {missing[0]!r}; its columns are "
                + ", ".join(flights.schema.names)
            )
        answered = sent.flights.filter(pc.equal(sent.flights["status"], 200))
        known = flights.select([id_column, label_column, time_column]).rename_columns(
            ["flight_id", "label", "time"]
        )
        joined = answered.select(["flight_id", "request_id", "row"]).join(
            known, "flight_id", join_type="inner"
        )
        if joined.num_rows != answered.num_rows:
            raise ConveyorError(
                f"{answered.num_rows - joined.num_rows} flights of the replay are not in the "
                "flights table given; pass the table that was replayed"
            )
        self._pending.append(
            joined.select(["request_id", "row", "label", "time"]).cast(
                pa.schema(
                    [
                        ("request_id", pa.string()),
                        ("row", pa.int32()),
                        ("label", joined.schema.field("label").type),
                        ("time", pa.timestamp("us", tz="UTC")),
                    ]
                )
            )
        )
        return int(joined.num_rows)

    @property
    def pending(self) -> int:
        """Flights kept whose labels have not been handed out yet."""
        return sum(int(table.num_rows) for table in self._pending)

    def due(self, until: datetime) -> pa.Table:
        """The labels known at ``until`` not handed out before, oldest flight first.

        Args:
            until: The replay's clock (timezone-aware; a naive one is taken as UTC).

        Returns:
            A table with ``request_id``, ``row`` and ``label``; empty when none is due.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        if not self._pending:
            return _empty()
        pending = pa.concat_tables(self._pending)
        cutoff = pa.scalar(until - self.delay, pa.timestamp("us", tz="UTC"))
        ripe = pc.less_equal(pending["time"], cutoff)
        self._pending = [pending.filter(pc.invert(ripe))]
        released = pending.filter(ripe).sort_by([("time", "ascending")])
        return released.select(list(LABEL_COLUMNS))

    def write_due(self, until: datetime, *, suffix: str = ".csv") -> Path | None:
        """Write the labels due at ``until`` to a new file in :attr:`folder`.

        Returns:
            The file (``labels-0001.csv``, ``labels-0002.csv`` ...), or None when none is due.
        """
        table = self.due(until)
        if table.num_rows == 0:
            return None
        self._files += 1
        return write_labels(table, self.folder / f"labels-{self._files:04d}{suffix}")


def write_labels(table: pa.Table, path: Path) -> Path:
    """Write labels as CSV or Parquet (by ``path``'s suffix), columns ``request_id, row, label``.

    Raises:
        ConveyorError: The suffix is neither ``.csv`` nor ``.parquet``, or a column is missing.
    """
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = Path(path)
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ConveyorError(f"cannot write labels to {path}: name it .csv or .parquet")
    missing = [name for name in LABEL_COLUMNS if name not in table.schema.names]
    if missing:
        raise ConveyorError(
            f"labels need the columns {', '.join(LABEL_COLUMNS)}; missing {missing[0]!r}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    selected = table.select(list(LABEL_COLUMNS))
    if kind == "csv":
        pcsv.write_csv(selected, path)
    else:
        pq.write_table(selected, path)
    return path


def _empty() -> pa.Table:
    import pyarrow as pa

    return pa.table(
        {
            "request_id": pa.array([], pa.string()),
            "row": pa.array([], pa.int32()),
            "label": pa.array([], pa.bool_()),
        }
    )
