"""Prometheus gauges of the newest monitoring runs: read from the store, shown by every worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conveyor.scaffold import init_project
from conveyor.serving._metrics import ServerMetrics
from conveyor.serving._monitor_gauges import read_monitor_snapshot
from conveyor.store import MetadataStore

NAME = "gauges-served"
CONVEYOR = (sys.executable, "-m", "conveyor")
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(body: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def value(s: Samples, metric: str, /, **labels: str) -> float | None:
    return s.get((metric, frozenset(labels.items())))


def add_runs(store: MetadataStore, project: str, *, share: float, auc: float | None) -> None:
    store.add_monitor_run(
        project,
        "drift",
        rows=1000,
        flagged=share >= 0.3,
        score=share,
        summary={
            "columns": {
                "distance": {"method": "psi", "value": 0.42, "drifted": True},
                "carrier": {"method": "jensen_shannon", "value": 0.05, "drifted": False},
                "origin": {"method": "jensen_shannon", "value": None, "drifted": False},
            },
            "drifted_share": share,
        },
        created_at=AT,
    )
    store.add_monitor_run(
        project,
        "quality",
        rows=300,
        flagged=False,
        score=auc,
        summary={
            "metric": "roc_auc",
            "versions": {
                "1": {"value": auc, "n_labelled": 300},
                "2": {"value": None, "n_labelled": 0},
            },
        },
    )


def test_the_gauges_show_the_newest_runs_and_drop_series_that_are_gone(store_url: str) -> None:
    with MetadataStore(store_url) as store:
        project = f"gauges-{os.urandom(4).hex()}"
        metrics = ServerMetrics(multiprocess_dir=None)
        assert value(samples(metrics.render()[0].decode()), "conveyor_drift_share") is None
        add_runs(store, project, share=0.5, auc=0.81)
        metrics.set_monitor(read_monitor_snapshot(store, project))
        s = samples(metrics.render()[0].decode())
        assert value(s, "conveyor_drift_share") == 0.5
        assert value(s, "conveyor_drift_detected") == 1
        assert value(s, "conveyor_drift_score", column="distance", method="psi") == 0.42
        assert value(s, "conveyor_drift_score", column="origin", method="jensen_shannon") is None
        assert value(s, "conveyor_live_quality", model_version="1", metric="roc_auc") == 0.81
        assert value(s, "conveyor_live_quality", model_version="2", metric="roc_auc") is None
        assert value(s, "conveyor_live_quality_labels", model_version="2") == 0
        assert value(s, "conveyor_monitor_run_timestamp_seconds", kind="drift") == AT.timestamp()

        store.add_monitor_run(project, "drift", rows=10, flagged=False, score=0.0, summary={})
        metrics.set_monitor(read_monitor_snapshot(store, project))
        s = samples(metrics.render()[0].decode())
        assert value(s, "conveyor_drift_share") == 0 and value(s, "conveyor_drift_detected") == 0
        assert not [key for key in s if key[0] == "conveyor_drift_score"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.integration
@pytest.mark.slow
def test_serve_exposes_the_newest_drift_and_quality_in_every_worker(
    tmp_path: Path, register_version: Callable[..., int], serving_tracking_uri: str
) -> None:
    from mlflow import MlflowClient

    version = register_version(NAME)
    client = MlflowClient(tracking_uri=serving_tracking_uri, registry_uri=serving_tracking_uri)
    client.set_registered_model_alias(NAME, "champion", str(version))
    root = tmp_path / "proj"
    init_project(root, name=NAME)
    with (root / "conveyor.yaml").open("a", encoding="utf-8") as spec:
        spec.write("\nserve:\n  workers: 2\n")
    store = MetadataStore(f"sqlite:///{root / '.conveyor' / 'conveyor.db'}")
    add_runs(store, NAME, share=0.5, auc=0.81)
    port = free_port()
    log_path = root / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                *CONVEYOR,
                "--project",
                str(root),
                "serve",
                "--port",
                str(port),
                "--runtime",
                "native",
            ],
            env={
                **os.environ,
                "MLFLOW_TRACKING_URI": serving_tracking_uri,
                "CONVEYOR_ARTIFACTS_URL": str(tmp_path / "artifacts"),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    url = f"http://127.0.0.1:{port}"

    def scrape() -> Samples:
        return samples(httpx.get(f"{url}/metrics", timeout=10).text)

    def shows(share: float) -> bool:
        assert process.poll() is None, log_path.read_text()
        try:
            # Each scrape reaches one of the two workers: both must show the value.
            return all(value(scrape(), "conveyor_drift_share") == share for _ in range(6))
        except httpx.TransportError:
            return False

    try:
        wait_for(lambda: shows(0.5), 120)
        s = scrape()
        assert value(s, "conveyor_drift_detected") == 1
        assert value(s, "conveyor_drift_score", column="distance", method="psi") == 0.42
        assert value(s, "conveyor_live_quality", model_version="1", metric="roc_auc") == 0.81
        assert value(s, "conveyor_live_quality_labels", model_version="1") == 300
        assert value(s, "conveyor_monitor_run_timestamp_seconds", kind="drift") == AT.timestamp()
        add_runs(store, NAME, share=0.1, auc=0.7)  # read again within monitor_seconds (10 s)
        wait_for(lambda: shows(0.1), 30)
        s = scrape()
        assert value(s, "conveyor_drift_detected") == 0
        assert value(s, "conveyor_live_quality", model_version="1", metric="roc_auc") == 0.7
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        store.close()
    assert process.returncode == 0, log_path.read_text()
