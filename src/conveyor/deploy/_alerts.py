"""Rollback alerts: a JSON POST to each ``monitor.alerts`` webhook with ``on: rollback``.

The body is Slack-compatible (``{"text": ...}``) and carries the details beside it for other
receivers. A webhook that fails is logged and skipped: an alert must never stop the controller,
and the rollback it reports has already happened. URLs often hold a token (Slack's do), so logs
show only their scheme and host.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from conveyor.deploy._transitions import json_metrics

if TYPE_CHECKING:
    from conveyor.deploy._state import Decision
    from conveyor.spec import AlertSpec
    from conveyor.store import DeploymentRecord

__all__ = ["post_alerts", "rollback_alert", "rollback_webhooks"]

logger = logging.getLogger(__name__)

TIMEOUT_S: Final = 5.0


def rollback_webhooks(alerts: Iterable[AlertSpec]) -> list[str]:
    """The webhook URLs of the spec's ``monitor.alerts`` that fire ``on: rollback``."""
    return [alert.webhook for alert in alerts if alert.on == "rollback"]


def rollback_alert(record: DeploymentRecord, decision: Decision, *, at: str) -> dict[str, Any]:
    """The alert for an automatic rollback: a one-line ``text`` and the details beside it."""
    new, old = record.challenger_version, record.champion_version
    guardrail = f" ({decision.guardrail})" if decision.guardrail else ""
    text = (
        f":rotating_light: Conveyor rolled back {record.project}: v{new} → v{old}{guardrail}. "
        f"{decision.reason}"
    )
    return {
        "text": text,
        "event": "rollback",
        "project": record.project,
        "deployment_id": record.id,
        "policy": str(record.policy),
        "champion": old,
        "challenger": new,
        "guardrail": decision.guardrail,
        "reason": decision.reason,
        "metrics": json_metrics(decision.metrics),
        "at": at,
    }


def post_alerts(
    urls: Sequence[str], payload: Mapping[str, Any], *, timeout: float = TIMEOUT_S
) -> list[str]:
    """POST ``payload`` as JSON to every URL; return the (redacted) URLs that failed."""
    body = json.dumps(payload).encode()
    failed = []
    for url in urls:
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "conveyor-controller"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
        except (OSError, ValueError, http.client.HTTPException) as err:  # URLError is an OSError
            shown = _redacted(url)
            logger.warning("rollback alert to %s failed: %s", shown, _cause(err))
            failed.append(shown)
    return failed


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2] or '?'}/…"


def _cause(err: Exception) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code}"
    reason = getattr(err, "reason", None)
    return str(reason if reason is not None else err)
