"""The floor: a minimal hand-written model server (Starlette + uvicorn + orjson + numpy).

``POST /predict`` with ``{"instances": [{"f00": 0.1, ...}, ...]}`` (the body Conveyor's
``/predict`` takes) answers ``{"predictions": [0|1, ...], "probabilities": [p1, ...]}``;
``GET /readyz`` answers 200 once the model is loaded and has predicted once. No validation, no
logging, no metrics: what a Python HTTP stack costs, and nothing else.

Its best settings: uvicorn with uvloop and httptools, no access log, ``--workers`` processes,
and the model with one thread per worker (ONNX Runtime with one intra-op thread, or LightGBM
with ``num_threads=1``), called inline in the event loop (a thread hop costs more than the
~10 µs of a prediction). The model comes from ``BENCH_ONNX_PATH`` / ``BENCH_LGBM_PATH`` and the
feature order from ``BENCH_FEATURES`` (set by bench/serving.py).

    python bench/serving_peers/minimal.py --port 8001 --workers 2 --runtime onnx
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np  # noqa: TID253 - a server script: numpy is what it runs on
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if __name__ != "__main__":  # in a worker (uvicorn imports "minimal:app"), not the launcher
    from _model import load, matrix

    PREDICT = load()  # loaded and warmed up before the worker serves


async def predict(request: Request) -> Response:
    proba = PREDICT(matrix(orjson.loads(await request.body())["instances"]))
    labels = (proba >= 0.5).astype(np.int64)
    body = {"predictions": labels.tolist(), "probabilities": proba.tolist()}
    return Response(orjson.dumps(body), media_type="application/json")


async def readyz(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/readyz", readyz)])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runtime", choices=("onnx", "lightgbm"), default="onnx")
    args = parser.parse_args()
    os.environ["BENCH_RUNTIME"] = args.runtime
    uvicorn.run(
        "minimal:app",
        app_dir=str(Path(__file__).parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    sys.exit(main())
