"""Pure ASGI middleware: request ids and request metrics for every HTTP request."""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from conveyor.serving._metrics import ServerMetrics
    from conveyor.serving._rollout_stats import StatsRecorder

__all__ = [
    "MODEL_VERSION_HEADER",
    "PREDICTION_ENDPOINTS",
    "REQUEST_ID_HEADER",
    "RequestContext",
    "context",
    "request_id",
]

REQUEST_ID_HEADER = "x-request-id"
MODEL_VERSION_HEADER = "x-model-version"
PREDICTION_ENDPOINTS = frozenset({"predict", "v2_infer", "invocations"})
"""Endpoints whose requests count in the rollout statistics."""
_CONTEXT = "conveyor"
_MAX_ID_LENGTH = 128

logger = logging.getLogger("conveyor.serving")


def context(scope: Scope) -> dict[str, Any]:
    """The per-request values handlers share with the middleware (endpoint, model version)."""
    ctx: dict[str, Any] = scope.setdefault(_CONTEXT, {})
    return ctx


def request_id(scope: Scope) -> str:
    """This request's id (from ``X-Request-ID`` when the client sent a usable one)."""
    return str(context(scope).get("request_id") or "")


class RequestContext:
    """Gives each request an id (echoed in ``X-Request-ID``) and records its metrics.

    A client's ``X-Request-ID`` is kept when it is printable ASCII of at most 128 characters;
    otherwise a new one is generated. Handlers name the endpoint and the model version with
    :func:`context`, so metric labels stay few whatever paths clients send. Responses of a
    request that reached a model say which version answered (``X-Model-Version``): during a
    rollout two calls may get two versions.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServerMetrics | None = None,
        stats: StatsRecorder | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = _incoming_id(scope) or os.urandom(16).hex()  # as random as uuid4, cheaper
        ctx = context(scope)
        ctx["request_id"] = rid
        header = (b"x-request-id", rid.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), header]
                version = ctx.get("model_version")
                if version is not None:
                    headers.append((b"x-model-version", str(version).encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            endpoint = str(ctx.get("endpoint", "other"))
            version = ctx.get("model_version")
            if self.metrics is not None:
                self.metrics.observe_request(
                    endpoint=endpoint,
                    model_version="" if version is None else str(version),
                    status=status,
                    seconds=seconds,
                )
            if self.stats is not None and version is not None and endpoint in PREDICTION_ENDPOINTS:
                self.stats.request(int(version), status, seconds)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if 0 < len(value) <= _MAX_ID_LENGTH and all(33 <= c < 127 for c in value):
                return str(value, "ascii")
            return None
    return None
