"""The demo's replayer against a real `conveyor serve` with two workers, and its prediction log.

Every flight replayed is found in the prediction log at the ``(request_id, row)`` the
replayer reported, with the values it sent: the key labels are later joined on.
"""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from conveyor.demo import Replayer, replay_rows
from conveyor.scaffold import init_project

from .conftest import start_serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def wait_ready(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as answer:
                if answer.status == 200:
                    time.sleep(0.5)  # both workers ready
                    return
        except OSError:
            pass
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        time.sleep(0.1)
    raise AssertionError("the server did not get ready in 120 s")


def test_replayed_flights_are_logged_where_the_replayer_says(
    tmp_path: Path, registered_model: Any
) -> None:
    root = tmp_path / "proj"
    init_project(root, name=registered_model.name)
    with (root / "conveyor.yaml").open("a", encoding="utf-8") as spec:
        spec.write("\nserve:\n  workers: 2\n  prediction_log:\n    flush_seconds: 60\n")
    july = replay_rows([7], sample=10)  # ~2,800 flights in time order
    # The test model's features. The demo's flights leave out what is known only after
    # departure (dep_delay) and the calendar (month, day): those are sent as missing.
    features = list(registered_model.feature_schema)
    inputs = july.select([n for n in features if n in july.column_names])
    for missing in (n for n in features if n not in july.column_names):
        inputs = inputs.append_column(missing, pa.nulls(july.num_rows, pa.int64()))

    artifacts = tmp_path / "artifacts"
    process, url = start_serve(root, registered_model, artifacts)
    try:
        wait_ready(url, process)
        with Replayer(url, batch_rows=10, concurrency=4) as replayer:
            result = replayer.send(inputs, july["flight_id"])
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    print(f"\n{result.rows} rows in {result.seconds:.2f} s: {result.rows_per_second:.0f} rows/s")

    (stats,) = result.versions
    assert (stats.version, stats.rows, stats.errors, stats.client_errors) == (
        registered_model.version,
        july.num_rows,
        0,
        0,
    )
    logged = duckdb.sql(
        f"select request_id, row, in_distance, in_carrier, model_version "
        f"from read_parquet('{artifacts}/predictions/**/*.parquet', hive_partitioning=true)"
    ).fetchall()
    where = {(rid, row): (distance, carrier, v) for rid, row, distance, carrier, v in logged}
    assert len(where) == len(logged) == july.num_rows
    sent = zip(
        result.flights.to_pylist(),
        july["distance"].to_pylist(),
        july["carrier"].to_pylist(),
        strict=True,
    )
    for flight, distance, carrier in sent:
        assert where[flight["request_id"], flight["row"]] == (
            distance,
            carrier,
            registered_model.version,
        )
