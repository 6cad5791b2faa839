"""Records of monitoring: monitoring runs, alerts and retraining triggers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

__all__ = [
    "ALERT_STATES",
    "RETRAIN_STATUSES",
    "AlertRecord",
    "MonitorRunRecord",
    "RetrainTriggerRecord",
]

ALERT_STATES: Final = ("firing", "resolved")
RETRAIN_STATUSES: Final = ("pending", "running", "succeeded", "failed", "skipped")


@dataclass(frozen=True)
class MonitorRunRecord:
    """One monitoring pass over a window of served predictions.

    Attributes:
        id: Hex id.
        project: The project's name.
        kind: ``drift`` or ``quality`` (free text: other kinds may follow).
        created_at: When it was recorded.
        model_version: The model version it judged, if one.
        window_start: Timestamp of the window's first prediction, if known.
        window_end: Timestamp of its last prediction, if known.
        rows: Predictions (or labelled predictions) it looked at.
        flagged: Whether it found a problem (dataset drift, a quality drop).
        score: Its headline number (drifted share, the quality metric), if any.
        summary: Small JSON with the details (per-column scores, per-version quality).
        artifacts: Report files in the artifact store by format (``{"json": sha256, ...}``).
    """

    id: str
    project: str
    kind: str
    created_at: datetime
    model_version: int | None
    window_start: datetime | None
    window_end: datetime | None
    rows: int
    flagged: bool
    score: float | None
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertRecord:
    """An alert rule's state for one subject (a column, a model version, the project).

    Attributes:
        id: Hex id.
        project: The project's name.
        rule: The rule's stable id.
        event: What it watches (``drift``, ``quality_drop``, ...).
        subject: What it fired about.
        state: ``firing`` or ``resolved``.
        first_at: When it first fired (this time round).
        last_at: When it was last seen firing or resolved.
        resolved_at: When it was resolved, if it is.
        notified_at: When the webhook was last told it fires.
        count: Times it was seen firing since ``first_at``.
        payload: The latest alert body.
    """

    id: str
    project: str
    rule: str
    event: str
    subject: str
    state: str
    first_at: datetime
    last_at: datetime
    resolved_at: datetime | None
    notified_at: datetime | None
    count: int
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RetrainTriggerRecord:
    """Why a retraining run was started, and what became of it.

    Attributes:
        id: Hex id.
        project: The project's name.
        kind: ``schedule``, ``drift``, ``quality_drop`` or ``manual``.
        reason: One line on why.
        details: JSON evidence (monitoring run ids, cron expression, ...).
        created_at: When it fired.
        status: ``pending``, ``running``, ``succeeded``, ``failed`` or ``skipped``.
        run_id: The pipeline run it started, once known.
        model_version: The model version that run registered, if any.
        deployment_id: The rollout started for that version, if any.
        finished_at: When the run ended.
        message: What happened, in one line (gate failed, rolled out, ...).
    """

    id: str
    project: str
    kind: str
    reason: str
    details: dict[str, Any]
    created_at: datetime
    status: str
    run_id: str | None
    model_version: int | None
    deployment_id: str | None
    finished_at: datetime | None
    message: str | None
