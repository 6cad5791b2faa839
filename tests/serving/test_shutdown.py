"""`conveyor serve` stops within bounds after heavy traffic, and its last statistics are kept.

Each worker sends the parent its rollout statistics every two seconds and once more while it
stops: one float per row predicted since the previous report, so after heavy traffic the last
reports outgrow the 64 KiB pipe to the parent. The parent used to stop reading while it
waited for the workers to exit, so they could not exit (a process flushes its queues before it
exits); it killed them after ``graceful_seconds + 15`` s and then waited forever on the
half-written message. Now it reads while they stop, and the counts reach the store. A second
signal kills the workers at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from conveyor.demo import Replayer
from conveyor.scaffold import init_project
from conveyor.session import Session
from conveyor.store import MetadataStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS = 200_000  # about 4 s of traffic; the last reports are hundreds of kilobytes
BATCH_ROWS = 250
STOP_WITHIN_S = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    root: Path, registered_model: Any, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registered_model.tracking_uri,
        "CONVEYOR_ARTIFACTS_URL": str(root.parent / "artifacts"),
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "conveyor", "--project", str(root)),
                "serve",
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # the workers too are killed if the test fails
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError(f"the server was not ready in 120 s:\n{log.read_text()}")


def stop_time(process: subprocess.Popen[bytes], log: Path) -> float:
    """SIGTERM the server; seconds until it exited (the whole group is killed if it hangs)."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(
            f"the server did not exit {STOP_WITHIN_S:.0f} s after SIGTERM:\n{log.read_text()}"
        ) from None
    return time.monotonic() - started


@pytest.fixture
def project(tmp_path: Path, registered_model: Any) -> Path:
    root = tmp_path / "proj"
    init_project(root, name=registered_model.name)
    with (root / "conveyor.yaml").open("a", encoding="utf-8") as spec:
        spec.write("\nserve:\n  workers: 2\n")
    return root


def rows(registered_model: Any, n: int) -> tuple[pa.Table, pa.Array]:
    sample = pa.Table.from_pylist(registered_model.rows)
    table = pa.concat_tables([sample] * (n // sample.num_rows + 1)).slice(0, n)
    return table, pa.array([f"f{i}" for i in range(n)])


def test_sigterm_after_heavy_traffic_stops_promptly_and_keeps_the_last_statistics(
    project: Path, registered_model: Any, tmp_path: Path
) -> None:
    table, ids = rows(registered_model, ROWS)
    log = tmp_path / "server.log"
    since = datetime.now(UTC) - timedelta(minutes=1)
    process, url = start_server(project, registered_model, log)
    try:
        with Replayer(url, batch_rows=BATCH_ROWS, concurrency=4) as replayer:
            result = replayer.send(table, ids)
    finally:
        seconds = stop_time(process, log)
    output = log.read_text()
    print(f"\n{result.rows_per_second:.0f} rows/s; stopped in {seconds:.1f} s")
    assert process.returncode == 0, output
    assert "stopped (worker exit codes: 0, 0)" in output
    assert result.errors == 0
    (answered,) = result.versions
    with Session.open(project) as session:
        db_url = session.settings.db_url
    with MetadataStore(db_url) as store:
        summary = store.serving_stats_summary(registered_model.name, since=since)
    # Every request counted, including those of the workers' last reports.
    assert summary[registered_model.version, False].requests == answered.requests


def wait_for(log: Path, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert time.monotonic() < deadline, f"no {text!r} in the output:\n{log.read_text()}"
        time.sleep(0.05)


def test_a_second_signal_stops_at_once(
    project: Path, registered_model: Any, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    process, url = start_server(project, registered_model, log)
    wait_for(log, "ready: serving")  # both workers
    port = int(url.rsplit(":", 1)[1])
    # A request whose body never ends keeps its worker waiting (graceful_seconds: 30 s).
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(
            b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"columns": '
        )
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        wait_for(log, "stopping: answering requests in flight")
        time.sleep(1)
        assert process.poll() is None, "the request in flight was not waited for"
        seconds = stop_time(process, log)
    output = log.read_text()
    assert seconds < 5, output
    assert "killing worker" in output and "another stop signal arrived" in output, output
    assert process.returncode == 1, output
