"""Small HTTP helpers shared by the protocols: client errors, bounded body reads, JSON."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope

__all__ = ["HttpError", "json_response", "parse_json", "read_body"]


class HttpError(Exception):
    """A request the server refuses; each protocol renders it in its own error format.

    Attributes:
        status: The HTTP status (4xx, or 503 while the models load).
        message: What is wrong, naming the field.
        field: The offending field or column, when there is one.
    """

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) one larger than ``limit`` before reading it all."""
    return await read_body_from(request.scope, request.receive, limit)


async def read_body_from(scope: Scope, receive: Receive, limit: int) -> bytes:
    """:func:`read_body` on the raw ASGI scope and receive channel."""
    # Straight from the ASGI scope and receive channel: Starlette's Headers object and
    # stream() generator cost more than the rest of a small request's parsing.
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                size = int(value)
            except ValueError:
                raise HttpError(400, f"invalid Content-Length header {value!r}") from None
            if size > limit:
                raise HttpError(413, _too_large(size, limit))
            break
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: nobody to answer
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise HttpError(413, _too_large(received, limit, at_least=True))
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(size: int, limit: int, *, at_least: bool = False) -> str:
    return (
        f"the request body is {'over ' if at_least else ''}{size} bytes, more than the "
        f"server's limit of {limit} bytes; send fewer rows per request"
    )


def parse_json(body: bytes) -> Any:
    """The decoded JSON document (400 naming the position when malformed)."""
    if not body:
        raise HttpError(400, "the request body is empty; send a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise HttpError(400, f"the request body is not valid JSON: {err}") from None


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response serialised with orjson (numpy arrays included)."""
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )
