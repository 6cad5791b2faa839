"""Ground-truth labels, ingested from CSV or Parquet files and kept next to the prediction log.

Labels often arrive long after the prediction (a flight is late or not hours later, a loan
defaults months later). Each ingestion writes one Parquet file::

    {artifacts_url}/labels/part-{utc}-{hex}.parquet

with the columns ``request_id`` (null when joined by key), ``row`` int32 (null: every row of
the request), ``key_name`` and ``key`` (the feature value the label is joined by, as text;
null when joined by request id), ``label`` float64 (1.0/0.0 for binary classification, the
value for regression), ``label_class`` (a class name, multiclass only), ``labeled_at`` and
``ingested_at`` (timestamp[us, UTC]). Labels that match no logged prediction are kept: the
prediction may be logged later (see :func:`conveyor.monitor.joined_predictions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from conveyor.data._duckdb import connect, quote_identifier, sql_string
from conveyor.errors import SourceError
from conveyor.monitor._label_store import label_schema, write_labels
from conveyor.spec import Task
from conveyor.spec._base import did_you_mean

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

__all__ = ["LabelBatch", "ingest_labels", "key_text"]

_READERS: Final = {".csv": "read_csv", ".tsv": "read_csv", ".txt": "read_csv"}
_PARQUET: Final = (".parquet", ".pq")
_TRUE: Final = frozenset({"true", "t", "yes", "y", "1"})
_FALSE: Final = frozenset({"false", "f", "no", "n", "0"})


@dataclass(frozen=True)
class LabelBatch:
    """One ingestion of labels.

    Attributes:
        path: The Parquet file written (a path or URL).
        source: The file the labels were read from.
        rows: Labels written.
        skipped: Rows of the source without a label (null), left out.
        duplicates: Rows replaced by a later row of the same source for the same prediction.
        key: The feature joined on, or None when joined by request id.
        ingested_at: When (UTC); later ingestions win over earlier ones.
    """

    path: str
    source: str
    rows: int
    skipped: int
    duplicates: int
    key: str | None
    ingested_at: datetime


def key_text(expression: str, sql_type: str) -> str:
    """SQL turning a key column into text the same way for label files and the log.

    Whole floats lose their ``.0`` so a key logged as ``1234.0`` matches a label ``1234``.
    """
    if sql_type.upper() in {"DOUBLE", "FLOAT", "REAL"}:
        return (
            f"CASE WHEN {expression} = trunc({expression}) AND abs({expression}) < 9e15 "
            f"THEN CAST(CAST({expression} AS BIGINT) AS VARCHAR) "
            f"ELSE CAST({expression} AS VARCHAR) END"
        )
    return f"CAST({expression} AS VARCHAR)"


def ingest_labels(
    artifacts_url: str,
    source: str | Path,
    *,
    id_column: str = "request_id",
    row_column: str = "row",
    key: str | None = None,
    label_column: str = "label",
    time_column: str = "labeled_at",
    task: Task | str | None = None,
    now: datetime | None = None,
) -> LabelBatch:
    """Read labels from a CSV or Parquet file and store them as one Parquet file.

    Args:
        artifacts_url: The artifact store's root (local folder or fsspec URL).
        source: A local ``.csv``/``.tsv`` or ``.parquet`` file.
        id_column: Column holding the request id (the ``X-Request-ID`` of the prediction).
        row_column: Column holding the row within the request; optional in the file (without
            it a label applies to every row of its request).
        key: Join by this feature instead of the request id; the file then has a column of
            that name, matched with the log's ``in_<key>``.
        label_column: Column holding the label.
        time_column: Column saying when the outcome was known; optional in the file.
        task: Checks the labels: binary labels are 0/1 or true/false, regression labels
            numbers, multiclass labels numbers or class names. Default: numbers or booleans.
        now: The ingestion time (default: now); later ingestions win.

    Returns:
        What was stored.

    Raises:
        SourceError: The file is missing or unreadable, a column is missing, an id is
            empty, or a label is not valid for the task.
        ArtifactError: The labels cannot be written to the artifact store.
    """
    task = None if task is None else Task(task)
    path = Path(source)
    if not path.is_file():
        raise SourceError(f"label file {str(path)!r} does not exist; give a CSV or Parquet file")
    when = (now or datetime.now(UTC)).astimezone(UTC)
    con = connect()
    try:
        columns = _describe(con, path)
        join = key if key is not None else id_column
        needed = [(label_column, "--label-column"), (join, "--key" if key else "--id-column")]
        for name, option in needed:
            if name not in columns:
                raise SourceError(
                    f"label file {path.name!r} has no column {name!r}"
                    f"{did_you_mean(name, columns)}; its columns are {', '.join(columns)} "
                    f"(choose another with {option})"
                )
        if row_column != "row" and row_column not in columns and key is None:
            raise SourceError(
                f"label file {path.name!r} has no column {row_column!r}"
                f"{did_you_mean(row_column, columns)}"
            )
        table, skipped, duplicates = _labels_table(
            con, path, columns, join, key, row_column, label_column, time_column, task, when
        )
    finally:
        con.close()
    written = write_labels(artifacts_url, table, when)
    return LabelBatch(written, str(path), table.num_rows, skipped, duplicates, key, when)


def _source_sql(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return f"read_parquet({sql_string(path)})"
    if suffix in _READERS:
        return f"read_csv({sql_string(path)}, auto_detect = true, header = true)"
    raise SourceError(
        f"label file {path.name!r}: unknown format {suffix or '(no suffix)'!r}; "
        "give a .csv, .tsv or .parquet file"
    )


def _describe(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {_source_sql(path)}").fetchall()
    except SourceError:
        raise
    except Exception as err:  # duckdb.Error
        raise SourceError(f"cannot read label file {str(path)!r}: {err}") from err
    return {str(row[0]): str(row[1]) for row in rows}


def _labels_table(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    columns: dict[str, str],
    join: str,
    key: str | None,
    row_column: str,
    label_column: str,
    time_column: str,
    task: Task | None,
    when: datetime,
) -> tuple[pa.Table, int, int]:
    import pyarrow as pa

    q = quote_identifier
    ident = key_text(q(join), columns[join])
    row = f"CAST({q(row_column)} AS INTEGER)" if row_column in columns and key is None else "NULL"
    labeled = "NULL"
    if time_column in columns:
        labeled = f"CAST({q(time_column)} AS TIMESTAMPTZ)"
    query = (
        f"SELECT {ident} AS ident, {row} AS row_, {q(label_column)} AS label_, "
        f"{labeled} AS labeled_at FROM {_source_sql(path)}"
    )
    try:
        raw = con.sql(query).to_arrow_table()
    except Exception as err:  # duckdb.Error: a bad row or time value
        raise SourceError(f"cannot read label file {str(path)!r}: {err}") from err
    labels, classes = _convert_labels(raw.column("label_").to_pylist(), label_column, path, task)
    idents: list[Any] = raw.column("ident").to_pylist()
    rows: list[Any] = raw.column("row_").to_pylist()
    times: list[Any] = raw.column("labeled_at").to_pylist()
    what = f"key {key!r}" if key else f"id column {join!r}"
    for index, (value, row_value) in enumerate(zip(idents, rows, strict=True)):
        if value is None or not str(value).strip():
            raise SourceError(
                f"label file {path.name!r}, row {index + 1}: empty {what}; every label needs "
                "the prediction it belongs to"
            )
        if row_value is not None and row_value < 0:
            raise SourceError(
                f"label file {path.name!r}, row {index + 1}: row {row_value} is negative"
            )
    latest: dict[tuple[Any, Any], int] = {}
    skipped = 0
    for index, (value, row_value) in enumerate(zip(idents, rows, strict=True)):
        if labels[index] is None and classes[index] is None:
            skipped += 1
            continue
        latest[(value, row_value)] = index  # a later row of the file wins
    kept = sorted(latest.values())
    duplicates = len(idents) - skipped - len(kept)
    n = len(kept)
    by_key = key is not None
    table = pa.table(
        {
            "request_id": [None if by_key else idents[i] for i in kept],
            "row": pa.array([rows[i] for i in kept], pa.int32()),
            "key_name": [key] * n,
            "key": [idents[i] if by_key else None for i in kept],
            "label": pa.array([labels[i] for i in kept], pa.float64()),
            "label_class": pa.array([classes[i] for i in kept], pa.string()),
            "labeled_at": pa.array([times[i] for i in kept], pa.timestamp("us", tz="UTC")),
            "ingested_at": pa.array([when] * n, pa.timestamp("us", tz="UTC")),
        },
        schema=label_schema(),
    )
    return table, skipped, duplicates


def _convert_labels(
    values: list[Any], column: str, path: Path, task: Task | None
) -> tuple[list[float | None], list[str | None]]:
    """Labels as floats (and class names for multiclass); raises on a value the task refuses."""
    import math

    numbers: list[float | None] = []
    classes: list[str | None] = []
    for index, value in enumerate(values):
        number: float | None = None
        name: str | None = None
        if value is None or (isinstance(value, float) and math.isnan(value)):
            pass
        elif isinstance(value, bool | int | float):
            number = float(value)
        else:
            text = str(value).strip()
            lowered = text.lower()
            if not text:
                pass
            elif task is not Task.multiclass_classification and lowered in _TRUE | _FALSE:
                number = 1.0 if lowered in _TRUE else 0.0
            else:
                try:
                    number = float(text)
                except ValueError:
                    if task is Task.multiclass_classification:
                        name = text
                    else:
                        raise SourceError(_bad_label(path, column, index, value, task)) from None
        if number is not None and not math.isfinite(number):
            raise SourceError(_bad_label(path, column, index, value, task))
        if task is Task.binary_classification and number not in (None, 0.0, 1.0):
            raise SourceError(_bad_label(path, column, index, value, task))
        numbers.append(number)
        classes.append(name)
    return numbers, classes


def _bad_label(path: Path, column: str, index: int, value: Any, task: Task | None) -> str:
    expected = {
        Task.binary_classification: "0/1 or true/false",
        Task.regression: "a finite number",
        None: "a finite number or true/false",
    }.get(task, "a class")
    return (
        f"label file {path.name!r}, row {index + 1}: label {value!r} in column {column!r} is "
        f"not {expected}; fix the file or choose the right column with --label-column"
    )
