"""Labels of replayed flights, released once their delay has passed, in the ingest format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from conveyor.demo import LabelFeed, Replayer, input_columns, replay_rows, write_labels
from conveyor.errors import ConveyorError


def test_labels_come_back_once_each_after_the_delay(fake_server: Any, tmp_path: Path) -> None:
    rows = replay_rows([7], sample=50)  # ~560 flights of July 2013, in time order
    fake_server.fail.add(rows["flight_id"][100].as_py())  # that request's rows get no label
    with Replayer(fake_server.url, batch_rows=10) as replayer:
        sent = replayer.send(rows.select(input_columns(rows)), rows["flight_id"])
    feed = LabelFeed(tmp_path / "labels", delay=timedelta(hours=12))
    assert feed.add(rows, sent) == rows.num_rows - 10

    start = datetime(2013, 7, 1, tzinfo=UTC)
    assert feed.due(start).num_rows == 0  # nothing has flown 12 hours before
    released: list[pa.Table] = []
    clock = start
    while feed.pending:
        clock += timedelta(days=3)
        table = feed.due(clock)
        times = rows.filter(pc.is_in(rows["flight_id"], _flights_of(table, sent)))["time_hour"]
        if table.num_rows:
            assert pc.max(times).as_py() <= clock - timedelta(hours=12)
        released.append(table)
    everything = pa.concat_tables(released)
    assert everything.column_names == ["request_id", "row", "label"]
    keys = list(
        zip(everything["request_id"].to_pylist(), everything["row"].to_pylist(), strict=True)
    )
    assert len(set(keys)) == len(keys) == rows.num_rows - 10
    # Each label is its flight's, found through the (request_id, row) the server received.
    by_key = {(m["request_id"], m["row"]): m["flight_id"] for m in sent.flights.to_pylist()}
    label_of = dict(zip(rows["flight_id"].to_pylist(), rows["delayed"].to_pylist(), strict=True))
    for key, label in zip(keys, everything["label"].to_pylist(), strict=True):
        assert label == label_of[by_key[key]]
    assert clock > datetime(2013, 7, 31, 12, tzinfo=UTC)


def test_written_labels_read_back_as_request_id_row_label(fake_server: Any, tmp_path: Path) -> None:
    rows = replay_rows([12], sample=200)
    with Replayer(fake_server.url, batch_rows=4) as replayer:
        sent = replayer.send(rows.select(input_columns(rows)), rows["flight_id"])
    feed = LabelFeed(tmp_path / "labels", delay=timedelta(hours=1))
    feed.add(rows, sent)
    first = feed.write_due(datetime(2013, 12, 15, tzinfo=UTC))
    assert first == tmp_path / "labels" / "labels-0001.csv"
    assert feed.write_due(datetime(2013, 12, 15, tzinfo=UTC)) is None  # nothing new is due
    second = feed.write_due(datetime(2014, 1, 2, tzinfo=UTC), suffix=".parquet")
    assert second is not None and second.name == "labels-0002.parquet"
    for path in (first, second):
        described = duckdb.sql(f"describe select * from '{path}'").fetchall()
        assert [(d[0], d[1]) for d in described][:3] == [
            ("request_id", "VARCHAR"),
            ("row", "BIGINT" if path.suffix == ".csv" else "INTEGER"),
            ("label", "BOOLEAN"),
        ]
    total = duckdb.sql(f"select count(*) from read_csv('{first}')").fetchall()[0][0]
    total += duckdb.sql(f"select count(*) from '{second}'").fetchall()[0][0]
    assert total == rows.num_rows and feed.pending == 0


def test_bad_inputs_are_refused(fake_server: Any, tmp_path: Path) -> None:
    rows = replay_rows([7], sample=1000)
    with Replayer(fake_server.url) as replayer:
        sent = replayer.send(rows.select(input_columns(rows)), rows["flight_id"])
    feed = LabelFeed(tmp_path)
    with pytest.raises(ConveyorError, match="no column 'delayed'"):
        feed.add(rows.drop_columns(["delayed"]), sent)
    with pytest.raises(ConveyorError, match="not in the flights table"):
        feed.add(rows.slice(1), sent)
    with pytest.raises(ConveyorError, match=r"name it \.csv or \.parquet"):
        write_labels(feed.due(datetime(2014, 1, 1, tzinfo=UTC)), tmp_path / "labels.json")
    with pytest.raises(ConveyorError, match="must not be negative"):
        LabelFeed(tmp_path, delay=timedelta(hours=-1))


def _flights_of(labels: pa.Table, sent: Any) -> pa.Array:
    keys = labels.select(["request_id", "row"])
    joined = keys.join(
        sent.flights.select(["request_id", "row", "flight_id"]), ["request_id", "row"]
    )
    return joined["flight_id"].combine_chunks()
