"""Pure ASGI middleware: request ids and request metrics for every HTTP request."""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from conveyor.serving._metrics import ServerMetrics

__all__ = ["REQUEST_ID_HEADER", "RequestContext", "context", "request_id"]

REQUEST_ID_HEADER = "x-request-id"
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
    :func:`context`, so metric labels stay few whatever paths clients send.
    """

    def __init__(self, app: ASGIApp, metrics: ServerMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = _incoming_id(scope) or uuid.uuid4().hex
        ctx = context(scope)
        ctx["request_id"] = rid
        header = (b"x-request-id", rid.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.metrics is not None:
                self.metrics.observe_request(
                    endpoint=str(ctx.get("endpoint", "other")),
                    model_version=str(ctx.get("model_version", "")),
                    status=status,
                    seconds=time.perf_counter() - start,
                )


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if 0 < len(value) <= _MAX_ID_LENGTH and all(33 <= c < 127 for c in value):
                return str(value, "ascii")
            return None
    return None
