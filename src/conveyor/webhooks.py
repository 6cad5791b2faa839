"""JSON POSTs to alert webhooks (Slack-compatible or any receiver of JSON).

Shared by the rollout controller's rollback alerts and the monitoring alerts. A webhook that
fails is logged and reported, never raised: an alert must not stop the loop that sends it.
URLs often hold a token (Slack's do), so logs and results show only their scheme and host.
Standard library only (``urllib``), so importing this module costs nothing.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = ["TIMEOUT_S", "post_alerts", "post_json", "redacted_url"]

logger = logging.getLogger(__name__)

TIMEOUT_S: Final = 5.0
"""Longest wait for one webhook to answer."""


def post_json(url: str, payload: Mapping[str, Any], *, timeout: float = TIMEOUT_S) -> str | None:
    """POST ``payload`` as JSON to ``url``; return None on success, else why it failed.

    A failure (unreachable host, timeout, HTTP status >= 400, invalid URL) is logged as a
    warning with the redacted URL and returned as a short reason, never raised.
    """
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, default=str).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "conveyor"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except (OSError, ValueError, http.client.HTTPException) as err:  # URLError is an OSError
        cause = _cause(err)
        logger.warning("alert to %s failed: %s", redacted_url(url), cause)
        return cause
    return None


def post_alerts(
    urls: Sequence[str], payload: Mapping[str, Any], *, timeout: float = TIMEOUT_S
) -> list[str]:
    """POST ``payload`` as JSON to every URL; return the (redacted) URLs that failed."""
    return [
        redacted_url(url) for url in urls if post_json(url, payload, timeout=timeout) is not None
    ]


def redacted_url(url: str) -> str:
    """``scheme://host:port/…``: the URL without credentials, path or query (tokens)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2] or '?'}/…"


def _cause(err: Exception) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code}"
    reason = getattr(err, "reason", None)
    return str(reason if reason is not None else err)
