"""A stand-in for `conveyor serve` on 127.0.0.1: answers ``POST /predict`` as the real one does.

The real server's answer (src/conveyor/serving/app/_protocol_conveyor.py and _middleware.py):
status 200, ``X-Request-ID`` echoed, ``X-Model-Version`` naming the version that answered, and
``{"model": {"name", "version"}, "request_id", "predictions", "probabilities"}``. This one
records what each request carried and which client port it came from, and answers with the
version ``version_of(request_index)`` picks, or 500 for request ids in ``fail``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Seen:
    request_id: str
    columns: list[str]
    data: list[list[Any]]
    client_port: int
    version: int


@dataclass
class FakeServer:
    port: int
    version_of: Callable[[int], int] = lambda index: 3
    fail: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn
            disable_nagle_algorithm = True  # as uvicorn: no 40 ms stall per answer

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                rid = self.headers["X-Request-ID"]
                with fake.lock:
                    version = fake.version_of(len(fake.seen))
                    fake.seen.append(
                        Seen(rid, body["columns"], body["data"], self.client_address[1], version)
                    )
                rows = len(body["data"])
                if self.path != "/predict":
                    status, answer = 404, {"error": "not found", "request_id": rid}
                elif rid in fake.fail:
                    status, answer = 500, {"error": "the model failed", "request_id": rid}
                else:
                    status = 200
                    answer = {
                        "model": {"name": "flights-delay", "version": str(version)},
                        "request_id": rid,
                        "predictions": [False] * rows,
                        "probabilities": [{"False": 0.8, "True": 0.2}] * rows,
                    }
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("X-Request-ID", rid)
                self.send_header("X-Model-Version", str(version))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def make_server() -> Iterator[Callable[..., FakeServer]]:
    """``make_server(start=True, **fields)``: a fake server on a free port (stopped at the end)."""
    made: list[FakeServer] = []

    def make(*, start: bool = True, **fields: Any) -> FakeServer:
        server = FakeServer(free_port(), **fields)
        made.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def fake_server(make_server: Callable[..., FakeServer]) -> FakeServer:
    """A fake server answering every request with version 3."""
    return make_server()
