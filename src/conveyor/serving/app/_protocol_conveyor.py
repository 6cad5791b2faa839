"""Conveyor's own JSON protocol: ``POST /predict``.

Request: ``{"instances": [{"col": value, ...}, ...]}`` (records) or
``{"columns": [...], "data": [[...], ...]}`` (split). Response::

    {"model": {"name": "churn", "version": "3"}, "request_id": "...",
     "predictions": [...], "probabilities": [{"no": 0.8, "yes": 0.2}, ...]}

``probabilities`` is null for regressors. Errors: ``{"error": message, "field": name or
null, "request_id": id}`` with 400 (malformed), 413 (too large), 422 (invalid values), 404,
503 (not ready) or 500 (the model failed).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.serving.app._common import (
    ModelFailedError,
    find_model,
    predict,
    probability_rows,
    validated,
)
from conveyor.serving.app._http import HttpError, parse_json, read_body_from
from conveyor.serving.app._middleware import context, request_id
from conveyor.serving.app._state import ServedModel, ServingState

__all__ = ["FastPredict", "answer", "routes"]


def routes(state: ServingState) -> list[BaseRoute]:
    """The routes of this protocol, bound to the worker's state.

    ``POST /predict`` is normally answered by :class:`FastPredict` before Starlette's router;
    this route answers it for apps built without that middleware, with the same results.
    """

    async def predict_endpoint(request: Request) -> Response:
        status, body = await answer(state, request.scope, request.receive)
        return Response(body, status_code=status, media_type="application/json")

    return [Route("/predict", predict_endpoint, methods=["POST"])]


async def answer(state: ServingState, scope: Scope, receive: Receive) -> tuple[int, bytes]:
    """The status and JSON body of a ``POST /predict``."""
    context(scope)["endpoint"] = "predict"
    rid = request_id(scope)
    try:
        served = find_model(state, scope, _model_parameter(scope))
        document = parse_json(await read_body_from(scope, receive, state.options.max_body_bytes))
        columns = _columns(document, served)
        prediction = await predict(state, served, columns, scope)
    except HttpError as err:
        payload: dict[str, Any] = {"error": err.message, "field": err.field, "request_id": rid}
        return err.status, orjson.dumps(payload)
    except ModelFailedError as err:
        return 500, orjson.dumps({"error": str(err), "field": None, "request_id": rid})
    payload = {
        "model": {"name": served.name, "version": served.version},
        "request_id": rid,
        "predictions": prediction.labels.tolist(),
        "probabilities": probability_rows(prediction, served.classes),
    }
    return 200, orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)


class FastPredict:
    """ASGI middleware answering ``POST /predict`` directly, before Starlette's router.

    The hot path skips the router's matching, the exception middleware and Starlette's
    Request and Response objects (together ~10 % of a 1-row request); every other request
    goes on to the app. Errors are answered exactly as the route would.
    """

    def __init__(self, app: ASGIApp, state: ServingState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        status, body = await answer(self.state, scope, receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _model_parameter(scope: Scope) -> str | None:
    query = scope.get("query_string", b"")
    if not query:
        return None
    from urllib.parse import parse_qs

    values = parse_qs(query.decode("latin-1")).get("model")
    return values[-1] if values else None


def _columns(document: Any, served: ServedModel) -> dict[str, Any]:
    from conveyor.serving._inputs import columns_from_records, columns_from_split

    schema = served.feature_schema
    if not isinstance(document, dict):
        raise HttpError(
            400,
            'the body must be a JSON object: {"instances": [...]} or {"columns": [...], '
            '"data": [...]}',
        )
    if "instances" in document:
        records = document["instances"]
        if not isinstance(records, list) or not records:
            raise HttpError(400, '"instances" must be a non-empty list of objects', "instances")
        return validated(lambda: columns_from_records(records, schema))
    if "columns" in document and "data" in document:
        names, data = document["columns"], document["data"]
        if not isinstance(names, list) or not isinstance(data, list) or not data:
            raise HttpError(
                400, '"columns" must be a list of names and "data" a non-empty list of rows', "data"
            )
        return validated(lambda: columns_from_split(names, data, schema))
    raise HttpError(
        400,
        'the body needs "instances" (a list of objects) or "columns" and "data"; found keys '
        + (", ".join(repr(k) for k in document) or "none"),
    )
