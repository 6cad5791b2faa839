"""The prediction log writes every appended row once, as Hive-partitioned Parquet DuckDB reads."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import fsspec
import numpy as np
import pyarrow.parquet as pq
import pytest

from conveyor.errors import ArtifactError
from conveyor.serving._predlog import FlushStats, PredictionLog

DAY = 86_400
T0 = 1_735_689_600.0  # 2025-01-01T00:00:00Z


def _append(
    log: PredictionLog,
    request_id: str,
    *,
    rows: int = 1,
    timestamp: float = T0 + 3600,
    version: int = 1,
    features: tuple[str, ...] = ("distance", "carrier"),
) -> None:
    inputs: dict[str, np.ndarray[Any, Any]] = {}
    for name in features:
        if name == "carrier":
            inputs[name] = np.array([f"C{i % 3}" for i in range(rows)])
        else:
            inputs[name] = np.arange(rows, dtype=np.float64) + 0.5
    proba = np.linspace(0, 1, rows)
    log.append(
        request_id=request_id,
        timestamp=timestamp,
        model_name="flights",
        model_version=version,
        inputs=inputs,
        outputs={
            "prediction": (proba > 0.5).astype(np.int64),
            "proba": np.stack([1 - proba, proba], axis=1),
        },
        latency_ms=1.25,
        n_rows=rows,
    )


def _query(base: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` over the log as table ``p``, read the way monitoring reads it."""
    pattern = f"{base}/predictions/**/*.parquet"
    source = f"read_parquet('{pattern}', hive_partitioning=true, union_by_name=true)"
    return duckdb.sql(sql.replace("FROM p", f"FROM {source}")).fetchall()


def _count(base: Path) -> int:
    if not list(base.glob("predictions/**/*.parquet")):
        return 0
    return int(_query(base, "SELECT count(*) FROM p")[0][0])


def _wait_for(condition: Any, timeout: float) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - start


def test_every_appended_row_is_written_once_and_duckdb_reads_it(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), worker_id="w0")
    _append(log, "a", rows=1)
    _append(log, "b", rows=32)

    stats = log.close()

    assert stats == FlushStats(
        rows_written=33, files_written=1, rows_dropped=0, rows_pending_lost=0
    )
    rows = _query(
        tmp_path,
        "SELECT request_id, row, timestamp, model_name, model_version, latency_ms, "
        "in_distance, in_carrier, out_prediction, out_proba[2], date, typeof(timestamp) "
        "FROM p ORDER BY request_id, row",
    )
    assert len(rows) == 33
    first, last = rows[0], rows[-1]
    assert first[:2] == ("a", 0)
    assert first[2].timestamp() == T0 + 3600
    assert first[3:8] == ("flights", 1, 1.25, 0.5, "C0")
    assert last[:2] == ("b", 31)
    assert last[6:10] == (31.5, "C1", 1, 1.0)
    assert str(last[10]) == "2025-01-01"
    assert last[11] == "TIMESTAMP WITH TIME ZONE"


def test_files_are_partitioned_by_utc_date_and_model_version(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), worker_id="host-1")
    _append(log, "late", timestamp=T0 + DAY - 1, version=1)
    _append(log, "early", timestamp=T0 + DAY + 1, version=1)
    _append(log, "v2", timestamp=T0 + DAY + 2, version=2, features=("distance", "month"))
    log.close()

    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert [f.rsplit("/", 1)[0] for f in files] == [
        "predictions/date=2025-01-01/model_version=1",
        "predictions/date=2025-01-02/model_version=1",
        "predictions/date=2025-01-02/model_version=2",
    ]
    assert all(f.rsplit("/", 1)[1].startswith("part-host-1-") for f in files)
    rows = _query(
        tmp_path, "SELECT request_id, date::VARCHAR, model_version, in_month FROM p ORDER BY 1"
    )
    assert rows == [
        ("early", "2025-01-02", 1, None),
        ("late", "2025-01-01", 1, None),
        ("v2", "2025-01-02", 2, 0.5),
    ]


def test_memory_url_receives_whole_objects() -> None:
    name = f"predlog-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    try:
        log = PredictionLog(f"memory://{name}", worker_id="w0")
        _append(log, "a", rows=4)
        log.flush()
        _append(log, "b", rows=2)
        stats = log.close()

        files = sorted(fs.glob(f"/{name}/predictions/**/*.parquet"))
        assert stats.files_written == len(files) == 2
        assert all("/date=2025-01-01/model_version=1/part-w0-" in f for f in files)
        tables = [pq.read_table(fs.open(f, "rb")) for f in files]
        assert sum(t.num_rows for t in tables) == 6
        assert not fs.glob(f"/{name}/predictions/_pending/*")  # no sidecar on object stores
    finally:
        if fs.exists(f"/{name}"):
            fs.rm(f"/{name}", recursive=True)


def test_timer_flushes_within_flush_seconds(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), worker_id="w0", flush_seconds=0.3)
    log.start()
    try:
        _append(log, "a")
        # The timer may have just restarted: allow one period plus time to write the file.
        elapsed = _wait_for(lambda: _count(tmp_path) == 1, timeout=10)
        assert elapsed < 0.3 + 1.5
        assert log.stats.rows_written == 1
    finally:
        log.close()


def test_flush_rows_triggers_a_flush_before_the_timer(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), worker_id="w0", flush_seconds=120, flush_rows=64)
    log.start()
    try:
        _append(log, "a", rows=32)
        time.sleep(0.3)
        assert _count(tmp_path) == 0  # below flush_rows: waits for the timer
        _append(log, "b", rows=32)
        _wait_for(lambda: _count(tmp_path) == 64, timeout=10)
    finally:
        log.close()


def test_concurrent_appends_and_flushes_lose_nothing(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), worker_id="w0", flush_seconds=0.02, flush_rows=300)
    log.start()
    threads, per_thread = 8, 1500

    def work(t: int) -> None:
        for i in range(per_thread):
            _append(log, f"{t}-{i}", rows=1 + i % 3)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stats = log.close()

    expected_rows = threads * sum(1 + i % 3 for i in range(per_thread))
    assert stats.rows_written == expected_rows
    assert stats.files_written > 1  # flushes really ran while threads appended
    count, distinct, max_row = _query(
        tmp_path, "SELECT count(*), count(DISTINCT request_id), max(row) FROM p"
    )[0]
    assert (count, distinct, max_row) == (expected_rows, threads * per_thread, 2)


def test_sampling_keeps_requests_at_the_sample_rate(tmp_path: Path) -> None:
    def run(folder: Path) -> tuple[FlushStats, set[str]]:
        log = PredictionLog(str(folder), worker_id="w0", sample_rate=0.25, seed=7)
        for i in range(4000):
            _append(log, str(i), rows=2)
        stats = log.close()
        return stats, {r[0] for r in _query(folder, "SELECT DISTINCT request_id FROM p")}

    stats, kept = run(tmp_path / "a")
    assert 0.22 < len(kept) / 4000 < 0.28
    assert stats.rows_written == 2 * len(kept)
    assert stats.rows_dropped == 8000 - stats.rows_written
    assert run(tmp_path / "b")[1] == kept  # the seed makes sampling reproducible


def test_readers_never_see_partial_files(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), worker_id="w0")
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = 0

    def read() -> None:
        nonlocal reads
        while not stop.is_set():
            for path in tmp_path.glob("predictions/**/*.parquet"):
                try:
                    pq.read_table(path)
                    reads += 1
                except BaseException as err:
                    errors.append(err)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(30):
            _append(log, str(i), rows=2000)
            log.flush()
    finally:
        stop.set()
        reader.join()
    log.close()
    assert errors == []
    assert reads > 0
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".parquet"]


def test_a_failed_write_leaves_no_file_and_retries_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = PredictionLog(str(tmp_path), worker_id="w0")
    _append(log, "a", rows=5)
    real_write = pq.write_table

    def half_write(table: Any, where: Any, **kwargs: Any) -> None:
        where.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(ArtifactError, match=r"disk full.*5 rows stay buffered"):
        log.flush()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []

    monkeypatch.setattr(pq, "write_table", real_write)
    assert log.close().rows_written == 5
    assert _count(tmp_path) == 5


def test_malformed_requests_are_dropped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = PredictionLog(str(tmp_path), worker_id="w0")
    _append(log, "good", rows=3)
    log.append(
        request_id="bad",
        timestamp=T0,
        model_name="flights",
        model_version=1,
        inputs={"distance": np.zeros(2), "carrier": np.array(["x", "y"])},
        outputs={"prediction": np.zeros(3), "proba": np.zeros((3, 2))},
        latency_ms=1.0,
        n_rows=3,
    )
    with caplog.at_level(logging.ERROR, logger="conveyor.serving"):
        stats = log.close()
    assert (stats.rows_written, stats.rows_pending_lost) == (3, 3)
    assert "dropped 3 rows of model version 1" in caplog.text
    assert _query(tmp_path, "SELECT DISTINCT request_id FROM p") == [("good",)]


def test_close_is_idempotent_and_later_appends_are_counted_lost(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), worker_id="w0", flush_seconds=0.05)
    log.start()
    _append(log, "a", rows=2)
    first = log.close()
    assert log.close() == first == FlushStats(2, 1, 0, 0)
    _append(log, "late", rows=3)
    assert log.flush() == 0
    assert log.stats == FlushStats(2, 1, 0, 3)
    with pytest.raises(RuntimeError, match="closed"):
        log.start()


def test_worker_id_must_be_safe_in_file_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="worker_id"):
        PredictionLog(str(tmp_path), worker_id="../w0")


CHILD = """
import os, signal, sys, time
import numpy as np
from conveyor.serving._predlog import PredictionLog

base, mode, flushed, pending = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
log = PredictionLog(base, worker_id="w7", flush_seconds=600)
log.start()

def on_sigterm(signum, frame):
    log.close()
    sys.exit(0)

signal.signal(signal.SIGTERM, on_sigterm)

def append(start, n):
    for i in range(start, start + n):
        log.append(request_id=str(i), timestamp=time.time(), model_name="m", model_version=1,
                   inputs={"x": np.array([float(i)])}, outputs={"prediction": np.array([1.0])},
                   latency_ms=0.5, n_rows=1)

append(0, flushed)
log.flush()
append(flushed, pending)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def _run_child(base: Path, flushed: int, pending: int, sig: signal.Signals) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(CHILD),
            str(base),
            sig.name,
            str(flushed),
            str(pending),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(sig)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


@pytest.mark.integration
def test_sigterm_closes_the_log_and_keeps_every_row(tmp_path: Path) -> None:
    _run_child(tmp_path, flushed=300, pending=700, sig=signal.SIGTERM)

    assert _count(tmp_path) == 1000
    assert not (tmp_path / "predictions" / "_pending" / "w7.pending").exists()


@pytest.mark.integration
def test_sigkill_loses_only_unflushed_rows_and_the_next_start_reports_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _run_child(tmp_path, flushed=300, pending=700, sig=signal.SIGKILL)

    assert _count(tmp_path) == 300
    assert (tmp_path / "predictions" / "_pending" / "w7.pending").exists()
    successor = PredictionLog(str(tmp_path), worker_id="w7")
    with caplog.at_level(logging.WARNING, logger="conveyor.serving"):
        successor.start()
    successor.close()
    assert "previous worker w7" in caplog.text
    assert "lost at most 700 rows" in caplog.text
    assert not (tmp_path / "predictions" / "_pending" / "w7.pending").exists()
