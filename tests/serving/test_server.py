"""`conveyor serve` as users run it: worker processes, concurrent clients, graceful SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from conveyor.scaffold import init_project
from conveyor.serving import columns_from_records, load_model

from .conftest import free_port, start_serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUNTIME = "native"
CONVEYOR = (sys.executable, "-m", "conveyor")
NO_MODEL = ("--workers", "1", "--model", "models:/nope@champion")


def logged_rows(base: Path) -> list[tuple[str, int]]:
    import duckdb

    files = f"{base}/predictions/**/*.parquet"
    return duckdb.sql(
        f"SELECT request_id, row FROM read_parquet('{files}', hive_partitioning=true, "
        "union_by_name=true)"
    ).fetchall()


@pytest.fixture
def project(tmp_path: Path, registered_model: Any) -> Path:
    root = tmp_path / "proj"
    init_project(root, name=registered_model.name)
    with (root / "conveyor.yaml").open("a", encoding="utf-8") as spec:
        spec.write(
            "\nserve:\n  workers: 2\n  batching:\n    max_wait_ms: 2\n"
            "  prediction_log:\n    flush_seconds: 60\n"  # only the shutdown flush writes
        )
    return root


def test_serve_batches_correctly_and_loses_no_log_row_on_sigterm(
    project: Path, registered_model: Any, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    process, url = start_serve(project, registered_model, artifacts, "--runtime", RUNTIME)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                time.sleep(0.1)
            time.sleep(0.5)  # both workers ready (the parent prints when they all are)

            # Distinct rows per request: each request gets one or two rows of its own.
            base = registered_model.rows
            requests = []
            for i in range(300):
                rows = [
                    dict(base[(i + j) % len(base)], distance=1000 + i * 7 + j)
                    for j in range(1 + i % 2)
                ]
                requests.append((f"r{i}", rows))

            def send(item: tuple[str, list[dict[str, Any]]]) -> dict[str, Any]:
                rid, rows = item
                response = client.post(
                    "/predict", json={"instances": rows}, headers={"X-Request-ID": rid}
                )
                assert response.status_code == 200, response.text
                return response.json()

            with ThreadPoolExecutor(32) as pool:
                answers = list(pool.map(send, requests))
            metrics = client.get("/metrics").text
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "ready: serving on" in output

    loaded = load_model(
        registered_model.uri,
        tracking_uri=registered_model.tracking_uri,
        cache_dir=tmp_path / "cache",
        runtime=RUNTIME,
    )
    all_rows = [row for _, rows in requests for row in rows]
    expected = loaded.runtime.predict(columns_from_records(all_rows, loaded.runtime.feature_schema))
    offset = 0
    for (rid, rows), answer in zip(requests, answers, strict=True):
        assert answer["request_id"] == rid
        want = expected.probabilities[offset : offset + len(rows)]
        got = [[p[str(c)] for c in registered_model.classes] for p in answer["probabilities"]]
        assert np.allclose(got, want), rid
        offset += len(rows)

    assert "conveyor_batch_size" in metrics and "conveyor_requests_total" in metrics
    logged = logged_rows(artifacts)
    assert len(logged) == len(all_rows)  # every row served is in the log: none lost
    assert sorted(set(logged)) == sorted(
        (rid, j) for rid, rows in requests for j in range(len(rows))
    )


def test_serve_refuses_a_model_that_does_not_exist(project: Path, registered_model: Any) -> None:
    result = subprocess.run(
        [*CONVEYOR, "--project", str(project), "serve", "--port", str(free_port()), *NO_MODEL],
        env={**os.environ, "MLFLOW_TRACKING_URI": registered_model.tracking_uri},
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Models are resolved once, before any worker starts: one clear line, no traceback.
    assert result.returncode == 1
    assert "no model registered yet as 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_killed_worker_is_replaced_and_its_log_loss_reported(
    project: Path, registered_model: Any, tmp_path: Path
) -> None:
    import re

    artifacts = tmp_path / "artifacts"
    process, url = start_serve(project, registered_model, artifacts, "--runtime", RUNTIME)
    assert process.stdout is not None
    lines: list[str] = []

    def read_until(needle: str, count: int = 1) -> None:
        deadline = time.monotonic() + 120
        while sum(needle in line for line in lines) < count:
            assert time.monotonic() < deadline, "".join(lines)
            line = process.stdout.readline()  # type: ignore[union-attr]
            assert line, "".join(lines)
            lines.append(line)

    try:
        read_until("ready: serving on")
        pids = [int(p) for p in re.findall(r"worker \d \(pid (\d+)\) ready", "".join(lines))]
        row = registered_model.rows[0]
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(20):  # rows buffered in both workers' prediction logs
                assert client.post("/predict", json={"instances": [row]}).status_code == 200
            os.kill(pids[0], signal.SIGKILL)
            read_until("starting a new one")
            # The other worker answers meanwhile; then the new one is ready too.
            for _ in range(20):
                assert client.post("/predict", json={"instances": [row]}).status_code == 200
            read_until(") ready in", count=3)
            for _ in range(20):
                assert client.post("/predict", json={"instances": [row]}).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    text = "".join(lines) + output
    assert process.returncode == 0, text
    assert f"(pid {pids[0]}) exited unexpectedly (exit code -9); starting a new one" in text
    assert re.search(rf"previous worker \S+ \(pid {pids[0]}\) .* lost at most \d+ rows", text)
