"""Rollback alerts: a JSON POST to each ``monitor.alerts`` webhook with ``on: rollback``.

The body is Slack-compatible (``{"text": ...}``) and carries the details beside it for other
receivers. :func:`conveyor.webhooks.post_alerts` sends it: a webhook that fails is logged (host
only, URLs hold tokens) and skipped, as an alert must never stop the controller, and the
rollback it reports has already happened.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from conveyor.deploy._transitions import json_metrics
from conveyor.webhooks import post_alerts

if TYPE_CHECKING:
    from conveyor.deploy._state import Decision
    from conveyor.spec import AlertSpec
    from conveyor.store import DeploymentRecord

__all__ = ["post_alerts", "rollback_alert", "rollback_webhooks"]


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
