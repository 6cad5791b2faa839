"""Run by ``test_kserve_client.py`` inside its own virtual environment, where ``kserve`` lives.

KServe pins ``pandas<3`` and ``protobuf<7``, which Conveyor's environment does not satisfy, so
its client runs in a separate interpreter: ``python _kserve_client.py BASE_URL REQUEST.json``.
REQUEST.json holds ``{"model": ..., "version": ..., "schema": {...}, "rows": [...]}``; the
script prints one JSON document with what KServe's ``InferenceRESTClient`` returned.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput


def inputs(schema: dict[str, str], rows: list[dict[str, Any]], binary: bool) -> list[Any]:
    tensors = []
    for name, kind in schema.items():
        values = [row[name] for row in rows]
        if kind == "categorical":
            array = np.array([str(v).encode() for v in values], dtype=object)
            tensor = InferInput(name, [len(rows)], "BYTES")
        else:
            array = np.array(values, dtype=np.float64)
            tensor = InferInput(name, [len(rows)], "FP64")
        tensor.set_data_from_numpy(array, binary_data=binary)
        tensors.append(tensor)
    return tensors


async def main(base_url: str, request: dict[str, Any]) -> dict[str, Any]:
    model, version = request["model"], request["version"]
    out: dict[str, Any] = {}
    async with InferenceRESTClient(RESTConfig(protocol="v2", retries=1, timeout=30)) as client:
        out["live"] = await client.is_server_live(base_url)
        out["ready"] = await client.is_server_ready(base_url)
        out["model_ready"] = await client.is_model_ready(base_url, model)
        for binary in (False, True):
            infer = InferRequest(
                model_name=model,
                infer_inputs=inputs(request["schema"], request["rows"], binary),
                request_id=f"kserve-{binary}",
                model_version=str(version),
                request_outputs=[RequestedOutput("predict"), RequestedOutput("probabilities")],
            )
            response = await client.infer(base_url, infer, model_name=model)
            out["binary" if binary else "json"] = {
                "id": response.id,
                "model_name": response.model_name,
                "model_version": response.model_version,
                "outputs": {o.name: o.as_numpy().tolist() for o in response.outputs},
            }
        try:
            await client.infer(base_url, {"inputs": []}, model_name="no-such-model")
        except Exception as err:  # httpx.HTTPStatusError, raised by KServe's client
            out["unknown_model_error"] = f"{type(err).__name__}: {err}"
    return out


if __name__ == "__main__":
    with open(sys.argv[2]) as f:
        payload = json.load(f)
    print(json.dumps(asyncio.run(main(sys.argv[1], payload))))
