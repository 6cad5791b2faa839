"""The replayer against a real HTTP server on 127.0.0.1 that answers as `conveyor serve` does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from conveyor.demo import Replayer, ReplayError, ReplayProgress, VersionStats


def flights(n: int) -> tuple[pa.Table, list[str]]:
    """``n`` rows of three columns (one with missing values) and their ids, f-0 ... f-(n-1)."""
    table = pa.table(
        {
            "distance": pa.array(range(n), pa.int64()),
            "carrier": pa.array(["UA", "DL", "9E"] * (n // 3) + ["AA"] * (n % 3)),
            "temp": pa.array([None if i % 7 == 0 else i / 2 for i in range(n)], pa.float64()),
        }
    )
    return table, [f"f-{i}" for i in range(n)]


def test_rows_go_in_order_in_batches_each_keyed_by_request_and_row(fake_server: Any) -> None:
    table, ids = flights(95)
    with Replayer(fake_server.url, batch_rows=10, concurrency=1) as replayer:
        result = replayer.send(table, pa.array(ids))

    seen = fake_server.seen
    assert [s.request_id for s in seen] == [f"f-{i}" for i in range(0, 95, 10)]
    assert [len(s.data) for s in seen] == [10] * 9 + [5]
    assert {s.client_port for s in seen} == {seen[0].client_port}  # one keep-alive connection
    assert seen[0].columns == ["distance", "carrier", "temp"]
    # Each flight's (request_id, row) is where the server received exactly its values.
    received = {(s.request_id, i): row for s in seen for i, row in enumerate(s.data)}
    sent = table.to_pylist()
    mapping = result.flights.to_pylist()
    assert [m["flight_id"] for m in mapping] == ids
    for flight, m in zip(sent, mapping, strict=True):
        assert received[m["request_id"], m["row"]] == list(flight.values())
        assert (m["model_version"], m["status"]) == (3, 200)
    assert received["f-0", 0] == [0, "UA", None]  # a missing value is sent as null
    assert result.flights.schema.field("row").type == pa.int32()
    (stats,) = result.versions
    assert stats == VersionStats(3, 10, 95, 0, 0, stats.p50_ms, stats.p99_ms)
    assert 0 < stats.p50_ms <= stats.p99_ms < 1000
    assert result.rows == 95 and result.errors == 0 and result.rows_per_second > 0


def test_a_canary_split_and_server_errors_are_counted_per_version(
    make_server: Callable[..., Any],
) -> None:
    failing = {"f-120", "f-550"}
    server = make_server(version_of=lambda index: 4 if index % 5 == 0 else 3, fail=failing)
    table, ids = flights(1000)
    progress: list[ReplayProgress] = []
    with Replayer(server.url, batch_rows=10, concurrency=4) as replayer:
        result = replayer.send(table, ids, on_progress=progress.append)
        again = replayer.send(table.slice(0, 30), ids[:30])  # the connections are reused

    answered_by = {s.request_id: s.version for s in server.seen[:100]}
    assert len(answered_by) == 100
    for m in result.flights.to_pylist():
        assert m["model_version"] == answered_by[m["request_id"]]
        assert m["status"] == (500 if m["request_id"] in failing else 200)
    stats = {s.version: s for s in result.versions}
    assert set(stats) == {3, 4}
    assert stats[3].requests == 80 and stats[4].requests == 20
    assert stats[3].rows + stats[4].rows == 1000
    assert sum(s.errors for s in result.versions) == result.errors == 2
    assert result.versions[0].version == 3  # most rows first
    assert len({s.client_port for s in server.seen}) <= 4
    assert again.rows == 30 and again.errors == 0
    assert progress[-1].rows_done == progress[-1].rows_total == 1000
    assert progress[-1].errors == 2
    answered_rows: dict[int, int] = {}
    for s in server.seen[:100]:
        if s.request_id not in failing:
            answered_rows[s.version] = answered_rows.get(s.version, 0) + len(s.data)
    assert progress[-1].rows_by_version == answered_rows


def test_a_refused_connection_is_retried_until_the_server_is_up(
    make_server: Callable[..., Any],
) -> None:
    server = make_server(start=False)
    table, ids = flights(40)
    threading.Timer(0.3, server.start).start()  # a worker restarting
    with Replayer(server.url, batch_rows=10, concurrency=2, retries=6) as replayer:
        result = replayer.send(table, ids)
    assert result.errors == 0
    assert result.flights["status"].to_pylist() == [200] * 40
    assert sorted(s.request_id for s in server.seen) == ["f-0", "f-10", "f-20", "f-30"]


def test_no_server_means_every_request_fails_without_a_version(
    make_server: Callable[..., Any],
) -> None:
    server = make_server(start=False)
    table, ids = flights(25)
    with Replayer(server.url, batch_rows=10, retries=1) as replayer:
        result = replayer.send(table, ids)
    (stats,) = result.versions
    assert (stats.version, stats.requests, stats.rows, stats.errors) == (None, 3, 25, 3)
    assert result.flights["model_version"].null_count == 25
    assert set(result.flights["status"].to_pylist()) == {0}


def test_pacing_caps_the_rows_per_second(fake_server: Any) -> None:
    table, ids = flights(100)
    with Replayer(fake_server.url, batch_rows=10, max_rows_per_second=400) as replayer:
        started = time.perf_counter()
        result = replayer.send(table, ids)
    # The last batch (rows 90-99) may leave 90 / 400 s after the start, not before.
    assert time.perf_counter() - started >= 0.22
    assert result.rows == 100 and result.errors == 0


def test_bad_arguments_are_refused(fake_server: Any) -> None:
    with pytest.raises(ReplayError, match="http:// URL"):
        Replayer("127.0.0.1:8000")
    with pytest.raises(ReplayError, match="batch_rows and concurrency"):
        Replayer(fake_server.url, batch_rows=0)
    table, ids = flights(5)
    with pytest.raises(ReplayError, match="4 ids for 5 rows"):
        Replayer(fake_server.url).send(table, ids[:4])
