"""Profiles are computed by DuckDB over whole tables and match what is known of the data."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import psutil
import pytest

from conveyor.data.profiling import TableProfile, profile_parquet, profile_relation
from conveyor.errors import SourceError


@pytest.fixture(scope="module")
def flights(flights_parquet: Path) -> TableProfile:
    return profile_parquet(flights_parquet)


def test_flights_profile_matches_known_facts(flights: TableProfile) -> None:
    assert flights.rows == 336_776
    assert [c.name for c in flights.columns][:3] == ["year", "month", "day"]
    assert len(flights.columns) == 19
    year = flights.column("year")
    assert (year.type, year.min, year.max, year.distinct, year.nulls) == (
        "BIGINT",
        2013,
        2013,
        1,
        0,
    )
    assert year.top == [("2013", 336_776)]
    origin = flights.column("origin")
    assert origin.distinct == 3 and origin.values == ["EWR", "JFK", "LGA"]
    assert origin.top == [("EWR", 120_835), ("JFK", 111_279), ("LGA", 104_662)]
    assert (origin.min_length, origin.max_length) == (3, 3)
    carrier = flights.column("carrier")
    assert carrier.distinct == 16 and carrier.values is not None and len(carrier.values) == 16
    assert carrier.top[0] == ("UA", 58_665) and len(carrier.top) == 10
    delay = flights.column("dep_delay")
    assert (delay.nulls, delay.count) == (8_255, 336_776 - 8_255)
    assert delay.null_fraction == pytest.approx(8_255 / 336_776)
    assert (delay.min, delay.max) == (-43, 1301)
    assert delay.mean == pytest.approx(12.639, abs=1e-3)
    assert delay.std == pytest.approx(40.210, abs=1e-3)
    assert flights.column("arr_delay").nulls == 9_430
    assert flights.column("tailnum").nulls == 2_512
    tailnum = flights.column("tailnum")
    assert tailnum.values is None and (tailnum.min_length, tailnum.max_length) == (5, 6)
    assert 3_900 < tailnum.distinct < 4_200  # exactly 4,043; exact count as < 10,000
    hour = flights.column("time_hour")
    assert hour.kind == "datetime" and hour.mean is None
    assert hour.min == datetime(2013, 1, 1, 10, tzinfo=UTC)


def test_deciles_come_from_the_whole_table_not_its_first_rows(flights: TableProfile) -> None:
    # The file is sorted by month; DuckDB's reservoir_quantile would answer all 1s (January).
    month = flights.column("month")
    assert month.quantiles is not None and len(month.quantiles) == 9
    assert month.quantiles == sorted(month.quantiles)
    assert (
        month.quantiles[0] in (1, 2, 3)
        and month.quantiles[4] in (6, 7)
        and month.quantiles[8] >= 11
    )


def test_profile_is_strict_json(flights: TableProfile) -> None:
    data = json.loads(json.dumps(flights.to_json(), allow_nan=False))
    assert data["rows"] == 336_776
    by_name = {c["name"]: c for c in data["columns"]}
    assert by_name["origin"]["top"][0] == ["EWR", 120_835]
    assert by_name["time_hour"]["min"] == "2013-01-01T10:00:00+00:00"


def test_types_nulls_and_odd_names() -> None:
    with duckdb.connect() as con:
        con.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
        con.execute(
            """CREATE TABLE "my ""odd"" table" AS SELECT
                 CAST(i AS DECIMAL(10, 2)) / 4 AS "price €",
                 CAST(['sad', 'ok', 'happy'][1 + i % 3] AS mood) AS "sel""ect",
                 i % 4 = 0 AS flag,
                 DATE '2024-01-01' + CAST(i AS INTEGER) AS day,
                 CASE WHEN i < 3 THEN 'NO' END AS country,
                 NULL::DOUBLE AS empty,
                 CASE WHEN i = 9 THEN 'inf'::DOUBLE ELSE i END AS odd_float,
                 [i, i] AS pair
               FROM range(10) r(i)"""
        )
        profile = profile_relation(con, 'my "odd" table')
    assert profile.rows == 10
    price = profile.column("price €")
    assert (price.kind, price.min, price.max, price.mean) == ("float", 0.0, 2.25, 1.125)
    mood = profile.column('sel"ect')
    assert mood.kind == "str" and mood.values == ["happy", "ok", "sad"]
    assert profile.column("flag").top == [("false", 7), ("true", 3)]
    day = profile.column("day")
    assert (day.kind, day.min, day.max) == ("date", date(2024, 1, 1), date(2024, 1, 10))
    country = profile.column("country")
    assert (country.nulls, country.null_fraction, country.values) == (7, 0.7, ["NO"])
    empty = profile.column("empty")
    assert (empty.count, empty.distinct, empty.min, empty.mean, empty.quantiles) == (
        0,
        0,
        None,
        None,
        None,
    )
    pair = profile.column("pair")
    assert pair.kind is None and pair.min is None and pair.distinct == 10
    json.dumps(profile.to_json(), allow_nan=False)  # inf is written as a string
    assert profile.column("odd_float").to_json()["max"] == "inf"


def test_empty_table_profiles_to_zero_rows() -> None:
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t (a INTEGER, b VARCHAR)")
        profile = profile_relation(con, "t")
    assert profile.rows == 0
    assert [(c.name, c.count, c.null_fraction, c.top) for c in profile.columns] == [
        ("a", 0, 0.0, []),
        ("b", 0, 0.0, []),
    ]


def test_big_tables_stay_in_duckdb() -> None:
    """5 million rows profiled without their values reaching Python (RSS barely moves)."""
    rows = 5_000_000
    process = psutil.Process()
    with duckdb.connect() as con:
        con.execute("SET threads = 2")
        con.execute(
            f"""CREATE VIEW big AS SELECT i, i % 7 AS k, 'v' || (i % 1000) AS s,
                  CASE WHEN i % 10 = 0 THEN NULL ELSE i / 3 END AS f
                FROM range({rows}) r(i)"""
        )
        before = process.memory_info().rss
        profile = profile_relation(con, "big")
        grown = process.memory_info().rss - before
    assert grown < 300 * 2**20, f"RSS grew by {grown / 2**20:.0f} MB"
    assert profile.rows == rows
    i = profile.column("i")
    assert (i.min, i.max, i.mean) == (0, rows - 1, (rows - 1) / 2)
    assert i.quantiles is not None
    assert i.quantiles[4] == pytest.approx(rows / 2, rel=0.02)  # sampled median
    k = profile.column("k")
    assert k.distinct == 7 and len(k.top) == 7 and sum(n for _, n in k.top) == rows
    s = profile.column("s")
    assert s.distinct == 1000 and s.values is None and s.top[0][1] == rows // 1000
    assert profile.column("f").nulls == rows // 10


def test_unknown_relation_or_file_is_a_source_error(tmp_path: Path) -> None:
    with duckdb.connect() as con, pytest.raises(SourceError, match="cannot profile 'nope'"):
        profile_relation(con, "nope")
    with pytest.raises(SourceError, match=r"no such file; check the path"):
        profile_parquet(tmp_path / "missing.parquet")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(SourceError, match="cannot profile"):
        profile_parquet(tmp_path / "bad.parquet")
