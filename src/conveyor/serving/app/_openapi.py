"""``/openapi.json`` (OpenAPI 3.1) and ``/docs``, a static page rendered from it (no CDN)."""

from __future__ import annotations

import html
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from conveyor import __version__
from conveyor.serving.app._http import json_response
from conveyor.serving.app._middleware import context
from conveyor.serving.app._state import ServingState

__all__ = ["ENDPOINTS", "openapi", "routes"]

ENDPOINTS: tuple[tuple[str, str, str, str], ...] = (
    # (method, path, tag, summary)
    ("post", "/predict", "conveyor", "Predict rows given as instances (records) or columns+data"),
    ("post", "/outcomes", "conveyor", "Report outcomes per answering version for an A/B rollout"),
    ("get", "/healthz", "probes", "Liveness: the process answers"),
    ("get", "/readyz", "probes", "Readiness: 200 once every model is loaded and warmed up"),
    ("get", "/metrics", "probes", "Prometheus metrics"),
    ("get", "/v2", "v2", "Open Inference Protocol: server metadata"),
    ("get", "/v2/health/live", "v2", "Open Inference Protocol: liveness"),
    ("get", "/v2/health/ready", "v2", "Open Inference Protocol: readiness"),
    ("get", "/v2/models/{name}", "v2", "Model metadata: input and output tensors"),
    ("get", "/v2/models/{name}/versions/{version}", "v2", "Model metadata of one version"),
    ("get", "/v2/models/{name}/ready", "v2", "Model readiness"),
    ("get", "/v2/models/{name}/versions/{version}/ready", "v2", "Model version readiness"),
    ("post", "/v2/models/{name}/infer", "v2", "Inference: one tensor per feature (JSON/binary)"),
    ("post", "/v2/models/{name}/versions/{version}/infer", "v2", "Inference on one version"),
    ("post", "/invocations", "mlflow", "MLflow scoring: dataframe_split/records, instances, CSV"),
    ("get", "/ping", "mlflow", "MLflow scoring: health"),
    ("get", "/health", "mlflow", "MLflow scoring: health"),
    ("get", "/version", "mlflow", "MLflow scoring: MLflow version"),
    ("get", "/openapi.json", "docs", "This document"),
    ("get", "/docs", "docs", "A page listing the endpoints"),
)

_OUTCOMES: dict[str, Any] = {
    "type": "object",
    "required": ["outcomes"],
    "additionalProperties": False,
    "properties": {
        "outcomes": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["model_version", "value"],
                "additionalProperties": False,
                "properties": {
                    "model_version": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "The version that answered (X-Model-Version)",
                    },
                    "value": {"type": "number", "description": "The outcome (0/1 or a number)"},
                    "request_id": {"type": ["string", "null"]},
                },
            },
        }
    },
}
_LOADING = "<tr><td colspan=2>loading</td></tr>"
_JSON_SCHEMA_TYPES = {"numeric": "number", "boolean": "boolean"}


def openapi(state: ServingState) -> dict[str, Any]:
    """The OpenAPI document; the feature schema of the default model once it is loaded."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, tag, summary in ENDPOINTS:
        operation: dict[str, Any] = {
            "tags": [tag],
            "summary": summary,
            "responses": {"200": {"description": "OK"}},
        }
        parameters = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in ("name", "version")
            if "{" + p + "}" in path
        ]
        if parameters:
            operation["parameters"] = parameters
        paths.setdefault(path, {})[method] = operation
    paths["/predict"]["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": _predict_schema(state)}},
    }
    outcomes = paths["/outcomes"]["post"]
    outcomes["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": _OUTCOMES}},
    }
    outcomes["responses"] = {
        "202": {"description": 'Accepted: {"accepted": n}'},
        "404": {"description": "The server follows no deployment"},
    }
    served = state.default.primary if state.default is not None else None
    description = (
        f"Serving model {served.name} version {served.version}."
        if served is not None
        else "The models are still loading."
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Conveyor model server",
            "version": __version__,
            "description": description,
        },
        "paths": paths,
    }


def _predict_schema(state: ServingState) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "object"}
    if state.default is not None:
        record["properties"] = {
            name: {"type": [_JSON_SCHEMA_TYPES.get(kind, "string"), "null"]}
            for name, kind in state.default.primary.feature_schema.items()
        }
        record["required"] = list(state.default.primary.feature_schema)
    return {
        "oneOf": [
            {
                "type": "object",
                "required": ["instances"],
                "properties": {"instances": {"type": "array", "items": record}},
            },
            {
                "type": "object",
                "required": ["columns", "data"],
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array"}},
                },
            },
        ]
    }


def _page(document: dict[str, Any]) -> str:
    info = document["info"]
    rows = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code>"
                f"</td><td>{html.escape(operation['tags'][0])}</td>"
                f"<td>{html.escape(operation['summary'])}</td></tr>"
            )
    schema = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    features = schema["schema"]["oneOf"][0]["properties"]["instances"]["items"].get("properties")
    feature_rows = "".join(
        f"<tr><td><code>{html.escape(name)}</code></td><td>{html.escape(str(spec['type'][0]))}"
        "</td></tr>"
        for name, spec in (features or {}).items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(info["title"])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}
</style></head><body>
<h1>{html.escape(info["title"])} <small>{html.escape(info["version"])}</small></h1>
<p>{html.escape(info["description"])} The machine-readable description is at
<a href="openapi.json">/openapi.json</a>.</p>
<h2>Endpoints</h2>
<table><tr><th>method</th><th>path</th><th>protocol</th><th>what</th></tr>
{"".join(rows)}</table>
<h2>Features</h2>
<table><tr><th>name</th><th>type</th></tr>{feature_rows or _LOADING}</table>
<h2>Example</h2>
<pre>curl -X POST localhost:8000/predict -d '{{"instances": [{{"feature": 1.0}}]}}'</pre>
</body></html>
"""


def routes(state: ServingState) -> list[BaseRoute]:
    """``/openapi.json`` and ``/docs``."""

    async def openapi_json(request: Request) -> Response:
        context(request.scope)["endpoint"] = "docs"
        return json_response(openapi(state))

    async def docs(request: Request) -> Response:
        context(request.scope)["endpoint"] = "docs"
        return HTMLResponse(_page(openapi(state)))

    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
