"""Monitoring runs and retraining triggers: what the monitoring loop found and what it started.

Both are plain logs a project's controller appends to and reads back newest first: the
debounce of a retraining trigger asks for the newest K drift windows, its cooldown for the
newest trigger. A trigger's record is then updated as its pipeline run goes (status, run id,
registered version, rollout), so ``conveyor monitor triggers`` tells the whole story.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from conveyor.errors import RecordNotFoundError

from . import _convert as cv
from . import _deploy_convert as dc
from ._base import StoreBase
from ._monitor_records import RETRAIN_STATUSES, MonitorRunRecord, RetrainTriggerRecord
from ._records import UNSET, Unset
from ._tables import MonitorRunRow, RetrainTriggerRow

__all__ = ["MonitoringStore"]


class MonitoringStore(StoreBase):
    """Monitoring runs (one per drift window or quality computation) and retraining triggers."""

    def add_monitor_run(
        self,
        project: str,
        kind: str,
        *,
        rows: int,
        flagged: bool,
        score: float | None,
        summary: Mapping[str, Any] | None = None,
        artifacts: Mapping[str, str] | None = None,
        model_version: int | None = None,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        created_at: datetime | None = None,
    ) -> MonitorRunRecord:
        """Record one monitoring pass.

        Args:
            project: The project's name.
            kind: ``drift`` or ``quality``.
            rows: Predictions it looked at.
            flagged: Whether it found a problem.
            score: Its headline number (finite), or None.
            summary: Small JSON with the details.
            artifacts: Report files in the artifact store by format.
            model_version: The version it judged, if one.
            window_start: First prediction's timestamp (aware), if known.
            window_end: Last prediction's timestamp (aware), if known.
            created_at: When (aware; default now).
        """
        if score is not None and (isinstance(score, bool) or not math.isfinite(score)):
            raise ValueError(f"score must be a finite number or None, got {score!r}")
        for value, what in (
            (window_start, "window_start"),
            (window_end, "window_end"),
            (created_at, "created_at"),
        ):
            cv.aware(value, what)
        row = MonitorRunRow(
            id=uuid.uuid4().hex,
            project=dc.text(project, "project"),
            kind=dc.text(kind, "kind"),
            created_at=created_at or cv.utcnow(),
            model_version=dc.maybe_model_version(model_version, "model_version"),
            window_start=window_start,
            window_end=window_end,
            rows=dc.count(rows, "rows"),
            flagged=bool(flagged),
            score=None if score is None else float(score),
            summary=cv.json_value(dict(summary or {}), "summary"),
            artifacts=cv.str_map(artifacts or {}, "artifacts"),
        )
        with self._write() as session:
            session.add(row)
            session.flush()
            return _monitor_run(row)

    def list_monitor_runs(
        self,
        project: str,
        *,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[MonitorRunRecord]:
        """Up to ``limit`` monitoring runs of ``project``, newest first.

        Args:
            project: The project's name.
            kind: Only runs of this kind.
            since: Only runs created at or after this (aware) instant.
            limit: Most runs returned.
        """
        cv.aware(since, "since")
        query = select(MonitorRunRow).where(MonitorRunRow.project == project)
        if kind is not None:
            query = query.where(MonitorRunRow.kind == kind)
        if since is not None:
            query = query.where(MonitorRunRow.created_at >= since)
        query = query.order_by(MonitorRunRow.seq.desc()).limit(cv.positive_limit(limit))
        with self._read() as session:
            return [_monitor_run(row) for row in session.scalars(query)]

    def add_retrain_trigger(
        self,
        project: str,
        kind: str,
        reason: str,
        details: Mapping[str, Any] | None = None,
        *,
        status: str = "pending",
        created_at: datetime | None = None,
    ) -> RetrainTriggerRecord:
        """Record that a retraining run is (to be) started, and why."""
        cv.aware(created_at, "created_at")
        row = RetrainTriggerRow(
            id=uuid.uuid4().hex,
            project=dc.text(project, "project"),
            kind=dc.text(kind, "kind"),
            reason=dc.text(reason, "reason"),
            details=cv.json_value(dict(details or {}), "details"),
            created_at=created_at or cv.utcnow(),
            status=_status(status),
            run_id=None,
            model_version=None,
            deployment_id=None,
            finished_at=None,
            message=None,
        )
        with self._write() as session:
            session.add(row)
            session.flush()
            return _trigger(row)

    def update_retrain_trigger(
        self,
        trigger_id: str,
        *,
        status: str | Unset = UNSET,
        run_id: str | Unset | None = UNSET,
        model_version: int | Unset | None = UNSET,
        deployment_id: str | Unset | None = UNSET,
        message: str | Unset | None = UNSET,
        finished_at: datetime | Unset | None = UNSET,
    ) -> RetrainTriggerRecord:
        """Change the given fields of a trigger; the others keep their values.

        Raises:
            RecordNotFoundError: No trigger has this id.
        """
        changes: dict[str, Any] = {}
        if not isinstance(status, Unset):
            changes["status"] = _status(status)
        if not isinstance(run_id, Unset):
            changes["run_id"] = run_id
        if not isinstance(model_version, Unset):
            changes["model_version"] = dc.maybe_model_version(model_version, "model_version")
        if not isinstance(deployment_id, Unset):
            changes["deployment_id"] = deployment_id
        if not isinstance(message, Unset):
            changes["message"] = message
        if not isinstance(finished_at, Unset):
            cv.aware(finished_at, "finished_at")
            changes["finished_at"] = finished_at
        with self._write() as session:
            row = _trigger_row(session, trigger_id, lock=True)
            for name, value in changes.items():
                setattr(row, name, value)
            session.flush()
            return _trigger(row)

    def get_retrain_trigger(self, trigger_id: str) -> RetrainTriggerRecord:
        """The trigger with this id.

        Raises:
            RecordNotFoundError: No trigger has this id.
        """
        with self._read() as session:
            return _trigger(_trigger_row(session, trigger_id))

    def list_retrain_triggers(self, project: str, *, limit: int = 20) -> list[RetrainTriggerRecord]:
        """Up to ``limit`` retraining triggers of ``project``, newest first."""
        query = (
            select(RetrainTriggerRow)
            .where(RetrainTriggerRow.project == project)
            .order_by(RetrainTriggerRow.seq.desc())
            .limit(cv.positive_limit(limit))
        )
        with self._read() as session:
            return [_trigger(row) for row in session.scalars(query)]


def _status(value: str) -> str:
    if value not in RETRAIN_STATUSES:
        raise ValueError(f"status must be one of {', '.join(RETRAIN_STATUSES)}; got {value!r}")
    return value


def _trigger_row(session: Any, trigger_id: str, *, lock: bool = False) -> RetrainTriggerRow:
    query = select(RetrainTriggerRow).where(RetrainTriggerRow.id == trigger_id)
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise RecordNotFoundError(f"no retraining trigger has the id {trigger_id!r}")
    return row  # type: ignore[no-any-return]


def _monitor_run(row: MonitorRunRow) -> MonitorRunRecord:
    return MonitorRunRecord(
        id=row.id,
        project=row.project,
        kind=row.kind,
        created_at=row.created_at,
        model_version=row.model_version,
        window_start=row.window_start,
        window_end=row.window_end,
        rows=row.rows,
        flagged=row.flagged,
        score=row.score,
        summary=dict(row.summary),
        artifacts=dict(row.artifacts),
    )


def _trigger(row: RetrainTriggerRow) -> RetrainTriggerRecord:
    return RetrainTriggerRecord(
        id=row.id,
        project=row.project,
        kind=row.kind,
        reason=row.reason,
        details=dict(row.details),
        created_at=row.created_at,
        status=row.status,
        run_id=row.run_id,
        model_version=row.model_version,
        deployment_id=row.deployment_id,
        finished_at=row.finished_at,
        message=row.message,
    )
