"""The Open Inference Protocol V2 (KServe, Triton) over HTTP/JSON.

Each feature is one input tensor named after it: ``BYTES`` for categorical features,
``FP64``/``FP32``/``INT64``/``INT32``/``BOOL`` for numeric ones, shape ``[n]`` or ``[n, 1]``.
A single tensor of shape ``[n, features]`` holding every feature in schema order is accepted
too. Outputs: ``predict`` (labels or values) and, for classifiers, ``probabilities``
(``FP64 [n, classes]``). The binary tensor extension is supported both ways: a request whose
``Inference-Header-Content-Length`` header gives the JSON part's size carries raw tensors
after it, and outputs asked for with ``binary_data`` come back the same way. Errors are
``{"error": "..."}``.
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from conveyor import __version__
from conveyor.serving.app._common import ModelFailedError, find_model, predict, validated
from conveyor.serving.app._http import HttpError, json_response, parse_json, read_body
from conveyor.serving.app._middleware import context
from conveyor.serving.app._state import ServedModel, ServingState

if TYPE_CHECKING:
    import numpy as np

    from conveyor.serving.runtimes import Prediction

__all__ = ["routes"]

_HEADER_LENGTH = "inference-header-content-length"
_NUMPY_TYPES = {
    "FP64": "<f8",
    "FP32": "<f4",
    "FP16": "<f2",
    "INT64": "<i8",
    "INT32": "<i4",
    "INT16": "<i2",
    "INT8": "<i1",
    "UINT64": "<u8",
    "UINT32": "<u4",
    "UINT16": "<u2",
    "UINT8": "<u1",
    "BOOL": "?",
}
_OUTPUTS = ("predict", "probabilities")


def routes(state: ServingState) -> list[BaseRoute]:
    """The V2 routes, bound to the worker's state."""

    def error(err: HttpError | ModelFailedError) -> Response:
        status = err.status if isinstance(err, HttpError) else 500
        return json_response({"error": str(err)}, status)

    async def server_metadata(request: Request) -> Response:
        context(request.scope)["endpoint"] = "v2_metadata"
        return json_response(
            {"name": "conveyor", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    async def live(request: Request) -> Response:
        context(request.scope)["endpoint"] = "v2_health"
        return json_response({"live": True})

    async def ready(request: Request) -> Response:
        context(request.scope)["endpoint"] = "v2_health"
        ready = state.ready and state.degraded is None
        return json_response({"ready": ready}, 200 if ready else 503)

    async def model_metadata(request: Request) -> Response:
        context(request.scope)["endpoint"] = "v2_metadata"
        try:
            served = _model(state, request, route=False)
        except HttpError as err:
            return error(err)
        group = state.group(served.name)
        versions = sorted(group.versions) if group is not None else [served.number]
        return json_response(metadata(served, [str(v) for v in versions]))

    async def model_ready(request: Request) -> Response:
        context(request.scope)["endpoint"] = "v2_health"
        try:
            served = _model(state, request, route=False)
        except HttpError as err:
            return error(err)
        return json_response({"name": served.name, "ready": True})

    async def infer(request: Request) -> Response:
        scope = request.scope
        context(scope)["endpoint"] = "v2_infer"
        try:
            served = _model(state, request)
            body = await read_body(request, state.options.max_body_bytes)
            document, binary = _split_body(body, request.headers.get(_HEADER_LENGTH))
            arrays = _input_arrays(document, binary, served)
            outputs = _requested_outputs(document, served)
            columns = validated(lambda: _columns(arrays, served), status=400)
            prediction = await predict(state, served, columns, scope)
        except (HttpError, ModelFailedError) as err:
            return error(err)
        return _infer_response(document, served, prediction, outputs)

    model = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    return [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        *(Route(path, model_metadata, methods=["GET"]) for path in (model, versioned)),
        *(Route(f"{path}/ready", model_ready, methods=["GET"]) for path in (model, versioned)),
        *(Route(f"{path}/infer", infer, methods=["POST"]) for path in (model, versioned)),
    ]


def _model(state: ServingState, request: Request, *, route: bool = True) -> ServedModel:
    params = request.path_params
    return find_model(state, request.scope, params["name"], params.get("version"), route=route)


def metadata(served: ServedModel, versions: list[str] | None = None) -> dict[str, Any]:
    """The model's V2 metadata: its versions, feature tensors and output tensors."""
    types = {"numeric": "FP64", "boolean": "BOOL"}
    inputs = [
        {"name": name, "datatype": types.get(kind, "BYTES"), "shape": [-1]}
        for name, kind in served.feature_schema.items()
    ]
    classes = served.classes
    outputs = [{"name": "predict", "datatype": _label_datatype(classes), "shape": [-1]}]
    if classes is not None:
        outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, len(classes)]})
    return {
        "name": served.name,
        "versions": versions or [served.version],
        "platform": f"conveyor_{served.loaded.runtime.kind}",
        "inputs": inputs,
        "outputs": outputs,
    }


def _label_datatype(classes: tuple[Any, ...] | None) -> str:
    if classes is None:
        return "FP64"
    if all(isinstance(c, bool) for c in classes):
        return "BOOL"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return "INT64"
    return "BYTES"


def _split_body(body: bytes, header_length: str | None) -> tuple[Any, memoryview]:
    if header_length is None:
        return parse_json(body), memoryview(b"")
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 < length <= len(body):
        raise HttpError(
            400,
            f"Inference-Header-Content-Length is {header_length!r} but the body has "
            f"{len(body)} bytes",
        )
    return parse_json(body[:length]), memoryview(body)[length:]


def _input_arrays(
    document: Any, binary: memoryview, served: ServedModel
) -> dict[str, np.ndarray[Any, Any]]:
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list):
        raise HttpError(400, 'the request needs "inputs": a list of tensors')
    offset = 0
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for index, tensor in enumerate(document["inputs"]):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise HttpError(400, f"input {index} must be an object with a name", "inputs")
        name: str = tensor["name"]
        datatype, shape = tensor.get("datatype"), tensor.get("shape")
        if datatype != "BYTES" and datatype not in _NUMPY_TYPES:
            raise HttpError(400, f"input {name!r} has unsupported datatype {datatype!r}", name)
        if (
            not isinstance(shape, list)
            or not shape
            or not all(isinstance(d, int) and d >= 0 for d in shape)
        ):
            raise HttpError(400, f"input {name!r} needs a shape of non-negative ints", name)
        count = math.prod(shape)
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise HttpError(400, f"input {name!r}: binary_data_size exceeds the body", name)
            values = _from_binary(binary[offset : offset + size], datatype, count, name)
            offset += size
        else:
            values = _from_json(tensor.get("data"), datatype, count, name)
        arrays[name] = values.reshape(shape) if len(shape) > 1 else values
    return arrays


def _from_json(data: Any, datatype: str, count: int, name: str) -> np.ndarray[Any, Any]:
    import numpy as np

    if not isinstance(data, list):
        raise HttpError(400, f"input {name!r} needs its values in a 'data' list", name)
    try:
        dtype = object if datatype == "BYTES" else _NUMPY_TYPES[datatype]
        values = np.asarray(data, dtype=dtype).reshape(-1)
    except (ValueError, TypeError) as err:
        raise HttpError(
            400, f"input {name!r} does not hold {datatype} values: {err}", name
        ) from None
    if values.size != count:
        raise HttpError(
            400, f"input {name!r} has {values.size} values but its shape needs {count}", name
        )
    return values


def _from_binary(raw: memoryview, datatype: str, count: int, name: str) -> np.ndarray[Any, Any]:
    import numpy as np

    if datatype == "BYTES":
        items: list[str | None] = []
        position = 0
        try:
            while position < len(raw):
                (length,) = struct.unpack_from("<I", raw, position)
                position += 4
                if position + length > len(raw):
                    raise ValueError("an element runs past the tensor's end")
                items.append(bytes(raw[position : position + length]).decode("utf-8"))
                position += length
        except (struct.error, ValueError) as err:
            raise HttpError(400, f"input {name!r}: malformed BYTES tensor ({err})", name) from None
        values = np.empty(len(items), dtype=object)
        values[:] = items
    else:
        dtype = np.dtype(_NUMPY_TYPES[datatype])
        if len(raw) != count * dtype.itemsize:
            raise HttpError(
                400,
                f"input {name!r}: {len(raw)} bytes do not hold {count} {datatype} values",
                name,
            )
        values = np.frombuffer(raw, dtype=dtype)
    if values.size != count:
        raise HttpError(
            400, f"input {name!r} has {values.size} values but its shape needs {count}", name
        )
    return values


def _columns(arrays: dict[str, np.ndarray[Any, Any]], served: ServedModel) -> dict[str, Any]:
    from conveyor.serving._inputs import columns_from_arrays

    schema = served.feature_schema
    if len(arrays) == 1:
        ((name, values),) = arrays.items()
        if name not in schema and values.ndim == 2 and values.shape[1] == len(schema):
            arrays = {feature: values[:, i] for i, feature in enumerate(schema)}
    flat = {
        name: values.reshape(-1) if values.ndim == 2 and values.shape[1] == 1 else values
        for name, values in arrays.items()
    }
    for name, values in flat.items():
        if values.ndim != 1:
            raise HttpError(
                400, f"input {name!r} must have shape [n] or [n, 1], not {list(values.shape)}", name
            )
    return columns_from_arrays(flat, schema)


def _requested_outputs(document: dict[str, Any], served: ServedModel) -> list[tuple[str, bool]]:
    available = _OUTPUTS if served.classes is not None else _OUTPUTS[:1]
    parameters = document.get("parameters") or {}
    binary_default = bool(isinstance(parameters, dict) and parameters.get("binary_data_output"))
    requested = document.get("outputs")
    if requested is None:
        return [(name, binary_default) for name in available]
    if not isinstance(requested, list):
        raise HttpError(400, '"outputs" must be a list of {"name": ...} objects', "outputs")
    chosen = []
    for output in requested:
        name = output.get("name") if isinstance(output, dict) else None
        if not isinstance(name, str) or name not in available:
            raise HttpError(
                400, f"unknown output {name!r}; this model has {', '.join(available)}", "outputs"
            )
        flag = (output.get("parameters") or {}).get("binary_data", binary_default)
        chosen.append((name, bool(flag)))
    return chosen


def _infer_response(
    document: dict[str, Any],
    served: ServedModel,
    prediction: Prediction,
    outputs: list[tuple[str, bool]],
) -> Response:
    datatype = _label_datatype(served.classes)
    tensors: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, binary in outputs:
        values = prediction.labels if name == "predict" else prediction.probabilities
        dtype = datatype if name == "predict" else "FP64"
        if values is None:  # only classifiers offer probabilities (checked on the way in)
            continue
        tensor: dict[str, Any] = {"name": name, "datatype": dtype, "shape": list(values.shape)}
        if binary:
            blob = _to_binary(values, dtype)
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = _to_json(values, dtype)
        tensors.append(tensor)
    response: dict[str, Any] = {
        "model_name": served.name,
        "model_version": served.version,
        "outputs": tensors,
    }
    if "id" in document:
        response["id"] = document["id"]
    header = orjson.dumps(response)
    if not blobs:
        return Response(header, media_type="application/json")
    return Response(
        b"".join([header, *blobs]),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


def _to_json(values: np.ndarray[Any, Any], datatype: str) -> list[Any]:
    flat = values.reshape(-1)
    if datatype == "BYTES":
        return [str(v) for v in flat.tolist()]
    return list(flat.tolist())


def _to_binary(values: np.ndarray[Any, Any], datatype: str) -> bytes:
    flat = values.reshape(-1)
    if datatype == "BYTES":
        parts = []
        for item in flat.tolist():
            encoded = str(item).encode("utf-8")
            parts.append(struct.pack("<I", len(encoded)) + encoded)
        return b"".join(parts)
    return flat.astype(_NUMPY_TYPES[datatype] if datatype != "INT64" else "<i8").tobytes()
