"""The BentoML peer: a BentoML 1.4 service with adaptive batching.

``POST /predict`` with ``{"instances": [{"f00": 0.1, ...}, ...]}`` answers the list of
P(class 1), one per row. The API is batchable: BentoML's adaptive batcher coalesces the rows
of concurrent requests (up to ``BENCH_BENTOML_MAX_BATCH`` rows; the batcher picks its own
wait) into one call of the model; ``BENCH_BENTOML_MAX_LATENCY_MS`` is the latency past which it
answers 503 instead (high: refusing requests is not faster serving). Two workers, one model
thread each (see _model.py), no access log. Health: ``GET /readyz``.

    bentoml serve bentoml_service:Model --host 127.0.0.1 --port 8002   # in this folder
"""

from __future__ import annotations

import os

import bentoml
from _model import load, matrix

WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
MAX_BATCH = int(os.environ.get("BENCH_BENTOML_MAX_BATCH", "256"))
MAX_LATENCY_MS = int(os.environ.get("BENCH_BENTOML_MAX_LATENCY_MS", "10000"))


@bentoml.service(workers=WORKERS, traffic={"timeout": 60}, logging={"access": {"enabled": False}})
class Model:
    def __init__(self) -> None:
        self.predict_proba = load()

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=MAX_LATENCY_MS)
    def predict(self, instances: list[dict[str, float]]) -> list[float]:
        return self.predict_proba(matrix(instances)).tolist()
