"""The demo's long-running parts: the server and the controller as real processes, an alert sink.

They are started exactly as a user would start them (``conveyor serve``, ``conveyor
controller``), with their output in log files under the project's state folder, so the demo
shows the product as it runs, and a failing part leaves its log behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from conveyor.errors import ConveyorError

__all__ = ["AlertSink", "Service", "free_port", "wait_ready"]

_STOP_TIMEOUT_S: Final = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """A ``conveyor`` command running in its own process group, its output in ``log``."""

    def __init__(
        self,
        name: str,
        project: Path,
        args: Sequence[str],
        log: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "conveyor", "--project", str(project), *args]
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
            )

    def check(self) -> None:
        """Raise if the process has exited.

        Raises:
            ConveyorError: It exited (the message points at its log).
        """
        code = self.process.poll()
        if code is not None:
            raise ConveyorError(
                f"the {self.name} exited with status {code}; its output is in {self.log}"
            )

    def stop(self) -> None:
        """SIGTERM (a clean stop: leases released, logs flushed), SIGKILL if it hangs."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass

    def __enter__(self) -> Service:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def wait_ready(url: str, service: Service, timeout: float = 120.0) -> None:
    """Wait until ``GET url`` answers 200 while ``service`` keeps running.

    Raises:
        ConveyorError: The service exited, or was not ready in time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.check()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.25)
    raise ConveyorError(
        f"the {service.name} was not ready after {timeout:.0f} s; see {service.log}"
    )


class AlertSink:
    """A local webhook receiver (127.0.0.1) that keeps every alert posted to it."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        lock = threading.Lock()
        received = self.alerts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(size) or b"{}")
                except ValueError:
                    body = {"text": "(not JSON)"}
                with lock:
                    received.append(body if isinstance(body, dict) else {"body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Where to post alerts."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/alerts"

    def close(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()
