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

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from conveyor.serving.app._common import (
    ModelFailedError,
    find_model,
    predict,
    probability_rows,
    validated,
)
from conveyor.serving.app._http import HttpError, json_response, parse_json, read_body
from conveyor.serving.app._middleware import context, request_id
from conveyor.serving.app._state import ServedModel, ServingState

__all__ = ["routes"]


def routes(state: ServingState) -> list[BaseRoute]:
    """The routes of this protocol, bound to the worker's state."""

    async def predict_endpoint(request: Request) -> Response:
        scope = request.scope
        context(scope)["endpoint"] = "predict"
        rid = request_id(scope)
        try:
            served = find_model(state, scope, request.query_params.get("model"))
            document = parse_json(await read_body(request, state.options.max_body_bytes))
            columns = _columns(document, served)
            prediction = await predict(state, served, columns, scope)
        except HttpError as err:
            body = {"error": err.message, "field": err.field, "request_id": rid}
            return json_response(body, err.status)
        except ModelFailedError as err:
            return json_response({"error": str(err), "field": None, "request_id": rid}, 500)
        return json_response(
            {
                "model": {"name": served.name, "version": served.version},
                "request_id": rid,
                "predictions": prediction.labels.tolist(),
                "probabilities": probability_rows(prediction, served.classes),
            }
        )

    return [Route("/predict", predict_endpoint, methods=["POST"])]


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
