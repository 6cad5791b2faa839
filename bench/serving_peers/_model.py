"""The peers' model: the benchmark's ONNX export or LightGBM model text, one thread.

Shared by the BentoML and LitServe peers (they import it from this folder); the paths and
the feature order come from the environment bench/serving.py sets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np  # noqa: TID253 - a server script: numpy is what it runs on

FEATURES: list[str] = json.loads(os.environ.get("BENCH_FEATURES", "[]"))


def load(runtime: str | None = None) -> Callable[[Any], Any]:
    """``predict(X) -> P(class 1)`` for a float64 array of shape (rows, features)."""
    runtime = runtime or os.environ.get("BENCH_RUNTIME", "onnx")
    if runtime == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            os.environ["BENCH_ONNX_PATH"], options, providers=["CPUExecutionProvider"]
        )
        names = [item.name for item in session.get_inputs()]
        output = [session.get_outputs()[1].name]

        def predict(X: Any) -> Any:
            columns = np.ascontiguousarray(X.T)
            feeds = {name: columns[i].reshape(-1, 1) for i, name in enumerate(names)}
            return np.asarray(session.run(output, feeds)[0])[:, 1]

    else:
        import lightgbm

        booster = lightgbm.Booster(model_file=os.environ["BENCH_LGBM_PATH"])

        def predict(X: Any) -> Any:
            return booster.predict(X, num_threads=1)

    predict(np.zeros((4, len(FEATURES))))
    return predict


def matrix(rows: list[dict[str, float]]) -> Any:
    """The feature matrix of JSON records."""
    return np.array([[row[name] for name in FEATURES] for row in rows], dtype=np.float64)
