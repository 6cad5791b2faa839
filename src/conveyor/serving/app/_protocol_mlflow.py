"""MLflow's scoring protocol, as ``mlflow models serve`` speaks it.

``POST /invocations`` takes JSON with ``dataframe_split``, ``dataframe_records``,
``instances`` or ``inputs`` (records, or a dict of columns), or ``text/csv`` with a header
row, and answers ``{"predictions": [{"prediction": ..., "proba_<class>": ...}, ...]}``: the
same rows the model's MLflow pyfunc flavour returns. Errors are
``{"error_code": "BAD_REQUEST", "message": ...}``. ``/ping`` and ``/health`` answer 200 once
the model is ready; ``/version`` gives the MLflow version, like MLflow's own server.
"""

from __future__ import annotations

import csv
import io
from importlib import metadata
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from conveyor import __version__
from conveyor.serving.app._common import (
    ModelFailedError,
    find_model,
    predict,
    probability_rows,
    validated,
)
from conveyor.serving.app._http import HttpError, json_response, parse_json, read_body
from conveyor.serving.app._middleware import context
from conveyor.serving.app._state import ServedModel, ServingState

__all__ = ["routes"]

_JSON_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_ERROR_CODES = {400: "BAD_REQUEST", 404: "RESOURCE_DOES_NOT_EXIST", 413: "BAD_REQUEST"}


def routes(state: ServingState) -> list[BaseRoute]:
    """The MLflow-compatible routes, bound to the worker's state."""

    async def ping(request: Request) -> Response:
        context(request.scope)["endpoint"] = "ping"
        return Response("\n", 200 if state.ready else 503, media_type="application/json")

    async def version(request: Request) -> Response:
        context(request.scope)["endpoint"] = "version"
        return Response(_mlflow_version(), media_type="application/json")

    async def invocations(request: Request) -> Response:
        scope = request.scope
        context(scope)["endpoint"] = "invocations"
        try:
            served = find_model(state, scope)
            body = await read_body(request, state.options.max_body_bytes)
            columns = _columns(request.headers.get("content-type"), body, served)
            prediction = await predict(state, served, columns, scope)
        except HttpError as err:
            code = _ERROR_CODES.get(err.status, "BAD_REQUEST")
            if err.status >= 500:
                code = "TEMPORARILY_UNAVAILABLE"
            return json_response({"error_code": code, "message": err.message}, err.status)
        except ModelFailedError as err:
            return json_response({"error_code": "INTERNAL_ERROR", "message": str(err)}, 500)
        labels = prediction.labels.tolist()
        probabilities = probability_rows(prediction, served.classes, prefix="proba_")
        if probabilities is None:
            rows = [{"prediction": label} for label in labels]
        else:
            rows = [
                {"prediction": label, **p} for label, p in zip(labels, probabilities, strict=True)
            ]
        return json_response({"predictions": rows})

    return [
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
    ]


def _mlflow_version() -> str:
    try:
        return metadata.version("mlflow")
    except metadata.PackageNotFoundError:
        return __version__


def _columns(content_type: str | None, body: bytes, served: ServedModel) -> dict[str, Any]:
    mime, _, parameters = (content_type or "application/json").partition(";")
    mime = mime.strip().lower()
    charset = parameters.strip().lower().removeprefix("charset=").strip() or "utf-8"
    if charset not in ("utf-8", "utf8"):
        raise HttpError(415, f"only UTF-8 is supported, not charset {charset!r}")
    if mime == "text/csv":
        return _from_csv(body, served)
    if mime != "application/json":
        raise HttpError(
            415, f"unsupported Content-Type {content_type!r}; use application/json or text/csv"
        )
    return _from_json(parse_json(body), served)


def _from_json(document: Any, served: ServedModel) -> dict[str, Any]:
    from conveyor.serving._inputs import columns_from_records, columns_from_split

    schema = served.feature_schema
    if not isinstance(document, dict):
        raise HttpError(400, f"the body must be a JSON object with one of {', '.join(_JSON_KEYS)}")
    keys = [key for key in _JSON_KEYS if key in document]
    if len(keys) != 1:
        found = ", ".join(repr(k) for k in document) or "none"
        raise HttpError(
            400, f"the body needs exactly one of {', '.join(_JSON_KEYS)}; found keys {found}"
        )
    key = keys[0]
    payload = document[key]
    if key == "dataframe_split":
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise HttpError(400, '"dataframe_split" needs "columns" and "data" lists', key)
        names = payload.get("columns")
        if not isinstance(names, list):
            raise HttpError(400, '"dataframe_split" needs a "columns" list', key)
        return validated(lambda: columns_from_split(names, payload["data"], schema), status=400)
    if isinstance(payload, dict):  # {"inputs": {"col": [values], ...}}
        return _from_column_dict(payload, served, key)
    if not isinstance(payload, list) or not payload:
        raise HttpError(400, f'"{key}" must be a non-empty list of records', key)
    return validated(lambda: columns_from_records(payload, schema), status=400)


def _from_column_dict(payload: dict[str, Any], served: ServedModel, key: str) -> dict[str, Any]:
    from conveyor.serving._inputs import columns_from_arrays

    return validated(lambda: columns_from_arrays(payload, served.feature_schema), status=400)


def _from_csv(body: bytes, served: ServedModel) -> dict[str, Any]:
    from conveyor.serving._inputs import columns_from_split

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise HttpError(400, f"the CSV body is not valid UTF-8: {err}") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
        raw = [row for row in reader if row]
    except (StopIteration, csv.Error) as err:
        raise HttpError(400, f"the CSV body cannot be read: {err or 'it is empty'}") from None
    if not raw:
        raise HttpError(400, "the CSV body has a header but no rows")
    schema = served.feature_schema
    # Categorical cells stay text ("007" is a category, not the number 7).
    categorical = [schema.get(name) == "categorical" for name in header]
    rows = [
        [
            (cell or None) if i < len(categorical) and categorical[i] else _csv_value(cell)
            for i, cell in enumerate(row)
        ]
        for row in raw
    ]
    return validated(lambda: columns_from_split(header, rows, schema), status=400)


def _csv_value(cell: str) -> Any:
    if cell == "":
        return None
    for convert in (int, float):
        try:
            return convert(cell)
        except ValueError:
            continue
    return cell
