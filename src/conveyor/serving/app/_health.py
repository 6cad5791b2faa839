"""Probes and metrics: ``/healthz`` (liveness), ``/readyz`` (readiness), ``/metrics``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from conveyor.serving.app._http import json_response
from conveyor.serving.app._middleware import context
from conveyor.serving.app._state import ServingState

__all__ = ["routes"]


def routes(state: ServingState) -> list[BaseRoute]:
    """The probe and metrics routes, bound to the worker's state."""

    async def healthz(request: Request) -> Response:
        context(request.scope)["endpoint"] = "healthz"
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        context(request.scope)["endpoint"] = "readyz"
        ready = state.ready and state.degraded is None
        body: dict[str, object] = {"ready": ready, "status": state.status}
        if state.error:
            body["error"] = state.error
        if state.degraded:
            body["error"] = state.degraded
        if state.ready:
            body["models"] = [
                {
                    "name": served.name,
                    "version": served.version,
                    "runtime": served.loaded.runtime.kind,
                    "load_seconds": served.loaded.load_seconds,
                }
                for served in state.served()
            ]
        return json_response(body, 200 if ready else 503)

    async def metrics(request: Request) -> Response:
        context(request.scope)["endpoint"] = "metrics"
        if state.metrics is None:
            return json_response({"error": "metrics are turned off on this server"}, 404)
        content, content_type = state.metrics.render()
        return Response(content, headers={"Content-Type": content_type})

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
