"""The LitServe peer: a LitAPI on CPU, optional batching.

``POST /predict`` with ``{"instances": [{"f00": 0.1, ...}, ...]}`` answers
``{"predictions": [P(class 1), ...]}``, one per row. Settings from the environment:
``BENCH_WORKERS`` inference workers (default 2), ``BENCH_LITSERVE_API_SERVERS`` HTTP processes
(default 1), ``BENCH_LITSERVE_MAX_BATCH`` (default 1: no batching; more coalesces requests,
waiting at most ``BENCH_LITSERVE_BATCH_TIMEOUT`` s) and ``BENCH_LITSERVE_FAST_QUEUE`` (ZeroMQ
instead of multiprocessing queues, default on). One model thread per worker (see _model.py).
Health: ``GET /health``.

    python bench/serving_peers/litserve_server.py --port 8003
"""

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import litserve as ls
import numpy as np  # noqa: TID253 - a server script: numpy is what it runs on
from _model import load, matrix

MAX_BATCH = int(os.environ.get("BENCH_LITSERVE_MAX_BATCH", "1"))


class ModelAPI(ls.LitAPI):
    def setup(self, device: Any) -> None:
        self.predict_proba = load()

    def decode_request(self, request: dict) -> Any:  # FastAPI reads the annotation
        return matrix(request["instances"])

    def batch(self, inputs: list[Any]) -> Any:  # with BENCH_LITSERVE_MAX_BATCH > 1
        return (np.concatenate(inputs), [len(x) for x in inputs])

    def predict(self, x: Any) -> Any:
        if isinstance(x, tuple):
            X, sizes = x
            return np.split(self.predict_proba(X), np.cumsum(sizes)[:-1])
        return self.predict_proba(x)

    def unbatch(self, output: Any) -> list[Any]:
        return list(output)

    def encode_response(self, output: Any) -> dict[str, Any]:
        return {"predictions": output.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8003)
    args = parser.parse_args()
    batch_timeout = float(os.environ.get("BENCH_LITSERVE_BATCH_TIMEOUT", "0.005"))
    api = ModelAPI(max_batch_size=MAX_BATCH, batch_timeout=batch_timeout if MAX_BATCH > 1 else 0)
    server = ls.LitServer(
        api,
        accelerator="cpu",
        workers_per_device=int(os.environ.get("BENCH_WORKERS", "2")),
        fast_queue=os.environ.get("BENCH_LITSERVE_FAST_QUEUE", "1") == "1",
    )
    server.run(
        host=args.host,
        port=args.port,
        num_api_servers=int(os.environ.get("BENCH_LITSERVE_API_SERVERS", "1")),
        generate_client_file=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
