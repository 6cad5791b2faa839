"""Alerts: one row per (project, rule, subject), firing or resolved, so a webhook hears once.

:meth:`AlertStore.raise_alert` is the deduplication: it upserts the alert as firing in one
transaction and says whether to notify — only when the alert was not firing before, or has
been firing for longer than the rule's re-notification period since it last notified. Any
number of controllers (or retries of one) raising the same alert notify once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from . import _convert as cv
from . import _deploy_convert as dc
from ._base import StoreBase
from ._monitor_records import ALERT_STATES, AlertRecord
from ._tables import AlertRow

__all__ = ["AlertStore"]


class AlertStore(StoreBase):
    """Alert states with deduplicated notification."""

    def raise_alert(
        self,
        project: str,
        rule: str,
        event: str,
        subject: str,
        payload: Mapping[str, Any],
        *,
        renotify_after: timedelta | None = None,
        now: datetime | None = None,
    ) -> tuple[AlertRecord, bool]:
        """Mark the alert firing; return it and whether to notify now.

        Notify when it was not firing (new, or resolved since), or when it has been firing and
        last notified at least ``renotify_after`` ago (never again while firing when None);
        notifying sets ``notified_at`` to ``now``.

        Args:
            project: The project's name.
            rule: The rule's stable id.
            event: What the rule watches.
            subject: What it fires about (``dataset``, a column, ``version 3``...).
            payload: The alert body (JSON).
            renotify_after: Least time between two notifications of a still-firing alert.
            now: The current time (aware; default now).
        """
        cv.aware(now, "now")
        at = now or cv.utcnow()
        body = cv.json_value(dict(payload), "payload")
        key = (
            dc.text(project, "project"),
            dc.text(rule, "rule"),
            dc.text(subject, "subject", empty=True),
        )
        with self._write() as session:
            # A resolved placeholder first, so two processes raising a new alert at once meet
            # on the same row (the unique key) and the second waits for the first's lock.
            session.execute(
                self._insert()(AlertRow)
                .values(
                    id=uuid.uuid4().hex,
                    project=key[0],
                    rule=key[1],
                    event=dc.text(event, "event"),
                    subject=key[2],
                    state="resolved",
                    first_at=at,
                    last_at=at,
                    resolved_at=None,
                    notified_at=None,
                    count=0,
                    payload=body,
                )
                .on_conflict_do_nothing(index_elements=["project", "rule", "subject"])
            )
            row = session.scalars(_by_key(*key).with_for_update()).one()
            if row.state != "firing":
                row.state, row.first_at, row.count, row.resolved_at = "firing", at, 1, None
                notify = True
            else:
                row.count += 1
                last = row.notified_at
                notify = renotify_after is not None and (
                    last is None or at - last >= renotify_after
                )
            row.event, row.last_at, row.payload = event, at, body
            if notify:
                row.notified_at = at
            session.flush()
            return _record(row), notify

    def resolve_alert(
        self, project: str, rule: str, subject: str, *, now: datetime | None = None
    ) -> AlertRecord | None:
        """Mark a firing alert resolved and return it; None when it was not firing."""
        cv.aware(now, "now")
        at = now or cv.utcnow()
        with self._write() as session:
            row = session.scalars(_by_key(project, rule, subject).with_for_update()).one_or_none()
            if row is None or row.state != "firing":
                return None
            row.state, row.resolved_at, row.last_at = "resolved", at, at
            session.flush()
            return _record(row)

    def list_alerts(
        self, project: str, *, state: str | None = None, limit: int = 100
    ) -> list[AlertRecord]:
        """Up to ``limit`` alerts of ``project`` (only in ``state`` if given), newest first."""
        if state is not None and state not in ALERT_STATES:
            raise ValueError(f"state must be one of {', '.join(ALERT_STATES)}; got {state!r}")
        query = select(AlertRow).where(AlertRow.project == project)
        if state is not None:
            query = query.where(AlertRow.state == state)
        query = query.order_by(AlertRow.last_at.desc(), AlertRow.seq.desc())
        with self._read() as session:
            return [_record(row) for row in session.scalars(query.limit(cv.positive_limit(limit)))]


def _by_key(project: str, rule: str, subject: str) -> Any:
    return select(AlertRow).where(
        AlertRow.project == project, AlertRow.rule == rule, AlertRow.subject == subject
    )


def _record(row: AlertRow) -> AlertRecord:
    return AlertRecord(
        id=row.id,
        project=row.project,
        rule=row.rule,
        event=row.event,
        subject=row.subject,
        state=row.state,
        first_at=row.first_at,
        last_at=row.last_at,
        resolved_at=row.resolved_at,
        notified_at=row.notified_at,
        count=row.count,
        payload=dict(row.payload),
    )
