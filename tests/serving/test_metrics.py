"""Server metrics render as Prometheus text, and add up across worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conveyor.errors import SettingsError
from conveyor.serving._metrics import ServerMetrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(body: bytes) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def _value(samples: Samples, metric: str, /, **labels: str) -> float | None:
    return samples.get((metric, frozenset(labels.items())))


def test_requests_errors_and_latency_buckets_are_rendered() -> None:
    metrics = ServerMetrics(multiprocess_dir=None)
    for seconds in (0.0001, 0.0003, 0.0004, 0.003, 2.0):
        metrics.observe_request(endpoint="/predict", model_version="3", status=200, seconds=seconds)
    metrics.observe_request(endpoint="/predict", model_version="3", status=422, seconds=0.001)
    metrics.observe_request(endpoint="/predict", model_version="4", status=503, seconds=0.2)

    body, content_type = metrics.render()

    assert content_type.startswith("text/plain; version=")
    s = _samples(body)
    requests = "conveyor_requests_total"
    assert _value(s, requests, endpoint="/predict", model_version="3", code="200") == 5
    assert _value(s, requests, endpoint="/predict", model_version="3", code="422") == 1
    assert _value(s, requests, endpoint="/predict", model_version="4", code="503") == 1
    errors = "conveyor_request_errors_total"
    assert _value(s, errors, endpoint="/predict", code="422") == 1
    assert _value(s, errors, endpoint="/predict", code="503") == 1
    assert _value(s, errors, endpoint="/predict", code="200") is None

    def bucket(le: str) -> float | None:
        return _value(
            s,
            "conveyor_request_latency_seconds_bucket",
            endpoint="/predict",
            model_version="3",
            le=le,
        )

    # Cumulative counts over the 6 requests of version 3; 2 s lands only in +Inf.
    assert [bucket(le) for le in ("0.0002", "0.0005", "0.001", "0.005", "1.0", "+Inf")] == [
        1,
        3,
        4,
        5,
        5,
        6,
    ]
    count = "conveyor_request_latency_seconds_count"
    assert _value(s, count, endpoint="/predict", model_version="3") == 6


def test_batches_and_model_info_are_rendered() -> None:
    metrics = ServerMetrics(multiprocess_dir=None)
    for size in (1, 3, 32, 256, 300):
        metrics.observe_batch(model_version="3", size=size, seconds=0.004)
    metrics.set_model_info(name="flights", version="3", runtime="onnx")
    metrics.set_model_info(name="flights", version="4", runtime="onnx")
    metrics.set_model_info(name="flights", version="4", runtime="native")
    metrics.clear_model_info(name="flights", version="3")

    s = _samples(metrics.render()[0])

    size = "conveyor_batch_size_bucket"
    assert [
        _value(s, size, model_version="3", le=le) for le in ("1.0", "4.0", "32.0", "256.0")
    ] == [
        1,
        2,
        3,
        4,
    ]
    assert _value(s, "conveyor_batch_size_sum", model_version="3") == 592
    latency = "conveyor_batch_latency_seconds_bucket"
    assert _value(s, latency, model_version="3", le="0.005") == 5
    info = "conveyor_model_info"
    assert _value(s, info, name="flights", version="4", runtime="native") == 1
    assert _value(s, info, name="flights", version="4", runtime="onnx") == 0
    assert _value(s, info, name="flights", version="3", runtime="onnx") == 0


def test_two_in_process_instances_do_not_share_counts() -> None:
    first, second = ServerMetrics(multiprocess_dir=None), ServerMetrics(multiprocess_dir=None)
    first.observe_request(endpoint="/a", model_version="1", status=200, seconds=0.01)
    s = _samples(second.render()[0])
    assert (
        _value(s, "conveyor_requests_total", endpoint="/a", model_version="1", code="200") is None
    )


def test_a_multiprocess_dir_other_than_the_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(SettingsError, match="PROMETHEUS_MULTIPROC_DIR is"):
        ServerMetrics(multiprocess_dir=tmp_path / "metrics")


# The server's sequence, in a fresh interpreter (multiprocess mode is process-wide): the parent
# prepares the folder, two spawned workers record and exit, a third renders; then the parent
# marks the first worker dead. Worker 1 imports prometheus_client before the variable is set.
DRIVER = """
import json, multiprocessing, os, sys
from pathlib import Path

from conveyor.serving._metrics import ServerMetrics


def worker(folder, requests, version, import_first, out):
    if import_first:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        import prometheus_client  # chooses in-memory values: ServerMetrics must switch
    metrics = ServerMetrics(multiprocess_dir=Path(folder))
    for i in range(requests):
        metrics.observe_request(endpoint="/predict", model_version=version,
                                status=500 if i == 0 else 200, seconds=0.0003)
    metrics.observe_batch(model_version=version, size=requests, seconds=0.002)
    metrics.set_model_info(name="flights", version=version, runtime="onnx")
    metrics.flush()  # as the server does every second and at shutdown
    if out:
        Path(out).write_bytes(metrics.render()[0])


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"a previous run")
    ServerMetrics.prepare_multiprocess_dir(folder)
    spawn = multiprocessing.get_context("spawn")
    pids = []
    for args in ((3, "1", True, ""), (5, "2", False, str(folder.parent / "worker2.txt"))):
        p = spawn.Process(target=worker, args=(str(folder), *args))
        p.start()
        p.join()
        pids.append(p.pid)
        assert p.exitcode == 0, p.exitcode
    ServerMetrics.mark_process_dead(pids[0], folder)
    metrics = ServerMetrics(multiprocess_dir=folder)
    print(json.dumps({
        "stale_removed": not (folder / "counter_999999.db").exists(),
        "worker2": (folder.parent / "worker2.txt").read_text(),
        "after_death": metrics.render()[0].decode(),
    }))
"""


@pytest.mark.integration
def test_multiprocess_mode_adds_up_every_worker(tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER))
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "metrics")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["stale_removed"]

    # Worker 2's /metrics shows worker 1's requests too.
    s = _samples(out["worker2"].encode())
    requests = "conveyor_requests_total"
    assert _value(s, requests, endpoint="/predict", model_version="1", code="200") == 2
    assert _value(s, requests, endpoint="/predict", model_version="2", code="200") == 4
    errors = "conveyor_request_errors_total"
    assert _value(s, errors, endpoint="/predict", code="500") == 2
    bucket = "conveyor_request_latency_seconds_bucket"
    assert _value(s, bucket, endpoint="/predict", model_version="1", le="0.0005") == 3
    assert _value(s, bucket, endpoint="/predict", model_version="2", le="0.0002") == 0
    assert _value(s, "conveyor_batch_size_bucket", model_version="2", le="8.0") == 1
    info = "conveyor_model_info"
    assert _value(s, info, name="flights", version="1", runtime="onnx") == 1
    assert _value(s, info, name="flights", version="2", runtime="onnx") == 1

    # A dead worker's counts stay in the totals; its model info does not.
    s = _samples(out["after_death"].encode())
    assert _value(s, requests, endpoint="/predict", model_version="1", code="200") == 2
    assert _value(s, info, name="flights", version="1", runtime="onnx") is None
    assert _value(s, info, name="flights", version="2", runtime="onnx") == 1
