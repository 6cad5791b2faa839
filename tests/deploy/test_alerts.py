"""Rollback alerts: which webhooks fire, and failures that are reported without their tokens."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from conveyor.deploy import rollback_webhooks
from conveyor.deploy._alerts import post_alerts
from conveyor.spec import MonitorSpec

from .conftest import Webhook


@pytest.fixture
def failing_url() -> Iterator[str]:
    """A server that answers every POST with HTTP 500."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(500)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/secret-token"
    server.shutdown()
    server.server_close()
    thread.join()


def test_only_rollback_alerts_are_rollback_webhooks() -> None:
    monitor = MonitorSpec.model_validate(
        {
            "alerts": [
                {"on": "drift", "webhook": "https://hooks.example.com/drift"},
                {"on": "rollback", "webhook": "https://hooks.example.com/a"},
                {"on": "rollback", "webhook": "https://hooks.example.com/b"},
            ]
        }
    )
    assert rollback_webhooks(monitor.alerts) == [
        "https://hooks.example.com/a",
        "https://hooks.example.com/b",
    ]


def test_failed_webhooks_are_reported_without_their_tokens_and_the_rest_still_get_it(
    failing_url: str, webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="conveyor.deploy._alerts")
    unreachable = "http://user:pw@127.0.0.1:9/secret-path"
    failed = post_alerts([failing_url, unreachable, webhook.url], {"text": "hi"}, timeout=5)
    host = failing_url.split("/")[2]
    assert failed == [f"http://{host}/…", "http://127.0.0.1:9/…"]
    assert webhook.received == [{"text": "hi"}]
    assert "HTTP 500" in caplog.text
    assert "secret" not in caplog.text and "pw" not in caplog.text
