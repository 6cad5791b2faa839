"""Deployments and their event history: the state every serving replica and controller shares."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from conveyor.errors import ConflictError, RecordNotFoundError, StoreError

from . import _convert as cv
from . import _deploy_convert as dc
from ._base import StoreBase
from ._deploy_records import (
    DeploymentEvent,
    DeploymentEventInput,
    DeploymentPolicy,
    DeploymentRecord,
    DeploymentStamp,
    DeploymentState,
)
from ._records import UNSET, Unset
from ._tables import ACTIVE_DEPLOYMENT_STATES, DeploymentEventRow, DeploymentRow

__all__ = ["DEPLOYMENT_CHANNEL", "DeploymentStore"]

DEPLOYMENT_CHANNEL: Final = "conveyor_deployments"
"""PostgreSQL ``NOTIFY`` channel that receives a project's name whenever one of its
deployments changes, for replicas that ``LISTEN`` instead of polling ``deployment_stamp``."""

# First key of the transaction-scoped advisory lock that serializes the creation of a project's
# deployments on PostgreSQL (the second is the project's hash). "conv", as for migrations,
# but two-key locks live in another key space than the migrations' one-key lock.
_PG_LOCK_CLASS: Final = 0x636F6E76


class DeploymentStore(StoreBase):
    """Deployments: versions, policy, traffic weights, state and an append-only history.

    A project has at most one active deployment (``pending``, ``rolling`` or ``paused``),
    enforced by a partial unique index, so two processes creating one at the same moment
    cannot both succeed. Every change goes through :meth:`update_deployment`, which
    compares-and-sets the deployment's ``version`` and appends the event explaining it in the
    same transaction. Terminal deployments (``promoted``, ``rolled_back``, ``failed``) never
    change again. The active deployment, if any, is always the project's newest.
    """

    def create_deployment(
        self,
        *,
        project: str,
        champion_version: int,
        challenger_version: int | None = None,
        policy: DeploymentPolicy | str,
        config: Mapping[str, Any] | None = None,
        weights: Mapping[int, float],
        shadow_version: int | None = None,
        shadow_rate: float = 0.0,
        state: DeploymentState | str = DeploymentState.PENDING,
        step: int = 0,
        step_started_at: datetime | None = None,
        actor: str,
        reason: str = "",
        metrics: Mapping[str, Any] | None = None,
    ) -> DeploymentRecord:
        """Record a new deployment at version 1, with its ``created`` event.

        Args:
            project: Name of the project.
            champion_version: The version serving now.
            challenger_version: The version to roll out, if any.
            policy: How traffic moves.
            config: The rollout spec, as JSON.
            weights: Version to percentage of callers' requests (sums to 100; only the
                champion and the challenger).
            shadow_version: A version to copy requests to, if any.
            shadow_rate: Share (0 to 1) of requests copied to ``shadow_version``.
            state: Initial state (usually ``pending``; ``promoted`` records a direct deploy).
            step: Initial step index.
            step_started_at: When the initial step started (aware), if it has.
            actor: Who deployed.
            reason: Why.
            metrics: Numbers that justified it (e.g. the evaluation), for the event.

        Raises:
            ConflictError: The project already has an active deployment.
            ValueError, TypeError: An argument is invalid (the message says which and why).
        """
        champion = dc.model_version(champion_version, "champion_version")
        challenger = dc.maybe_model_version(challenger_version, "challenger_version")
        if challenger == champion:
            raise ValueError(f"the challenger must differ from the champion (both {champion})")
        initial = dc.state(state)
        now = cv.utcnow()
        cv.aware(step_started_at, "step_started_at")
        row = DeploymentRow(
            id=uuid.uuid4().hex,
            project=dc.text(project, "project"),
            champion_version=champion,
            challenger_version=challenger,
            policy=dc.policy(policy).value,
            config=dc.as_mapping(config, "config"),
            weights=dc.weights(weights, (champion, challenger)),
            shadow_version=dc.maybe_model_version(shadow_version, "shadow_version"),
            shadow_rate=dc.fraction(shadow_rate, "shadow_rate"),
            state=initial.value,
            step=dc.count(step, "step"),
            step_started_at=step_started_at,
            created_at=now,
            updated_at=now,
            actor=dc.text(actor, "actor"),
            reason=dc.text(reason, "reason", empty=True),
            version=1,
        )
        created = DeploymentEventInput(
            kind="created", actor=actor, reason=reason, metrics=dict(metrics or {})
        )
        event = dc.event(created)
        try:
            with self._write() as session:
                # Even a deployment created finished (a direct deploy) must wait for the active
                # one: replicas follow the newest deployment. SQLite's BEGIN IMMEDIATE already
                # serializes this check and the insert; PostgreSQL needs a lock.
                if self._postgres:
                    lock = func.pg_advisory_xact_lock(_PG_LOCK_CLASS, func.hashtext(project))
                    session.execute(select(lock))
                active = self._active_row(session, project)
                if active is not None:
                    raise _active_conflict(active)
                session.add(row)
                session.flush()  # the event's foreign key needs the deployment first
                self._append_event(session, row, None, event)
                return dc.deployment_record(row)
        except StoreError as err:
            if not isinstance(err.__cause__, IntegrityError):
                raise
            # The unique index caught what the check missed (a writer that skipped the lock).
            current = self.active_deployment(project)
            if current is None:
                raise ConflictError(
                    f"another deployment of project {project!r} became active at the same "
                    "moment; look at `conveyor rollout status` and try again"
                ) from err
            raise _active_conflict(current) from err

    def get_deployment(self, deployment_id: str) -> DeploymentRecord:
        """Return the deployment whose id is ``deployment_id`` or starts with it (4+ characters).

        Raises:
            RecordNotFoundError: No deployment matches, or the prefix matches several.
        """
        with self._read() as session:
            row = cv.by_prefix(session, DeploymentRow, deployment_id.strip().lower(), "deployment")
            return dc.deployment_record(row)

    def active_deployment(self, project: str) -> DeploymentRecord | None:
        """Return the project's deployment in progress (pending, rolling or paused), if any."""
        with self._read() as session:
            row = self._active_row(session, project)
            return None if row is None else dc.deployment_record(row)

    def latest_deployment(self, project: str) -> DeploymentRecord | None:
        """Return the project's newest deployment, active or not (what replicas serve)."""
        found = self.list_deployments(project, limit=1)
        return found[0] if found else None

    def list_deployments(
        self, project: str | None = None, *, limit: int = 20
    ) -> list[DeploymentRecord]:
        """Return up to ``limit`` deployments, newest first, optionally of one project only."""
        query = select(DeploymentRow).order_by(DeploymentRow.seq.desc())
        if project is not None:
            query = query.where(DeploymentRow.project == project)
        with self._read() as session:
            rows = session.scalars(query.limit(cv.positive_limit(limit)))
            return [dc.deployment_record(row) for row in rows]

    def deployment_stamp(self, project: str) -> DeploymentStamp | None:
        """Return the id and version of the project's newest deployment: one indexed lookup.

        Replicas poll this (about every second) and reload the deployment only when it
        changes: every change increments the version, and a new deployment has a new id.
        """
        query = (
            select(DeploymentRow.id, DeploymentRow.version)
            .where(DeploymentRow.project == project)
            .order_by(DeploymentRow.seq.desc())
            .limit(1)
        )
        with self._read() as session:
            found = session.execute(query).one_or_none()
            return None if found is None else DeploymentStamp(id=found.id, version=found.version)

    def update_deployment(
        self,
        deployment_id: str,
        *,
        expected_version: int,
        event: DeploymentEventInput,
        state: DeploymentState | str | Unset = UNSET,
        weights: Mapping[int, float] | Unset = UNSET,
        step: int | Unset = UNSET,
        step_started_at: datetime | Unset | None = UNSET,
        challenger_version: int | Unset | None = UNSET,
        shadow_version: int | Unset | None = UNSET,
        shadow_rate: float | Unset = UNSET,
    ) -> DeploymentRecord:
        """Change the given fields of a deployment and append ``event``, in one transaction.

        The deployment's ``actor`` and ``reason`` become the event's; its version increments.
        The event records the state before and after, and the weights after the change.

        Args:
            deployment_id: The deployment's full id.
            expected_version: Change it only if its version still equals this.
            event: The decision that explains the change.
            state: New state.
            weights: New traffic weights (sum 100, champion and challenger only).
            step: New step index.
            step_started_at: When the new step started (aware), or ``None``.
            challenger_version: New challenger, or ``None`` to clear it.
            shadow_version: New shadow version, or ``None`` to clear it.
            shadow_rate: New share (0 to 1) of requests copied to the shadow version.

        Raises:
            RecordNotFoundError: No deployment has this id.
            ConflictError: ``expected_version`` differs from the stored version (another
                process changed it first), or the deployment is already terminal.
            ValueError, TypeError: An argument is invalid, or the result would be (weights
                naming a version that is no longer the challenger, ...).
        """
        checked = dc.event(event)
        changes: dict[str, Any] = {}
        if not isinstance(state, Unset):
            changes["state"] = dc.state(state).value
        if not isinstance(step, Unset):
            changes["step"] = dc.count(step, "step")
        if not isinstance(step_started_at, Unset):
            cv.aware(step_started_at, "step_started_at")
            changes["step_started_at"] = step_started_at
        if not isinstance(challenger_version, Unset):
            changes["challenger_version"] = dc.maybe_model_version(
                challenger_version, "challenger_version"
            )
        if not isinstance(shadow_version, Unset):
            changes["shadow_version"] = dc.maybe_model_version(shadow_version, "shadow_version")
        if not isinstance(shadow_rate, Unset):
            changes["shadow_rate"] = dc.fraction(shadow_rate, "shadow_rate")
        with self._write() as session:
            row = self._locked(session, deployment_id, expected_version)
            previous = row.state
            for key, value in changes.items():
                setattr(row, key, value)
            if row.challenger_version == row.champion_version:
                raise ValueError(
                    f"the challenger must differ from the champion (both {row.champion_version})"
                )
            # Checked even when unchanged: a new challenger may leave the old one in them.
            new_weights = (
                {int(k): v for k, v in row.weights.items()}
                if isinstance(weights, Unset)
                else weights
            )
            row.weights = dc.weights(new_weights, (row.champion_version, row.challenger_version))
            row.actor, row.reason = checked.actor, checked.reason
            row.updated_at = cv.utcnow()
            row.version += 1
            session.flush()
            self._append_event(session, row, previous, checked)
            return dc.deployment_record(row)

    def list_deployment_events(self, deployment_id: str) -> list[DeploymentEvent]:
        """Return the deployment's history (full id), oldest first.

        Raises:
            RecordNotFoundError: No deployment has this id.
        """
        query = (
            select(DeploymentEventRow)
            .where(DeploymentEventRow.deployment_id == deployment_id)
            .order_by(DeploymentEventRow.id)
        )
        with self._read() as session:
            exists = select(DeploymentRow.seq).where(DeploymentRow.id == deployment_id)
            if session.scalar(exists) is None:
                raise RecordNotFoundError(
                    f"no deployment with id {deployment_id!r} (the full id is needed here)"
                )
            return [dc.deployment_event(row) for row in session.scalars(query)]

    @staticmethod
    def _active_row(session: Session, project: str) -> DeploymentRow | None:
        query = select(DeploymentRow).where(
            DeploymentRow.project == project,
            DeploymentRow.state.in_(ACTIVE_DEPLOYMENT_STATES),
        )
        return session.scalars(query).one_or_none()

    @staticmethod
    def _locked(session: Session, deployment_id: str, expected_version: int) -> DeploymentRow:
        query = select(DeploymentRow).where(DeploymentRow.id == deployment_id).with_for_update()
        row = session.scalars(query).one_or_none()
        if row is None:
            raise RecordNotFoundError(
                f"no deployment with id {deployment_id!r} (changes need the full id)"
            )
        if row.version != expected_version:
            raise ConflictError(
                f"deployment {deployment_id} is at version {row.version}, not "
                f"{expected_version}: another process changed it first; read it again and "
                "decide whether to retry"
            )
        if DeploymentState(row.state).terminal:
            raise ConflictError(
                f"deployment {deployment_id} is {row.state}, which is final: it cannot change "
                "any more; start a new deployment instead"
            )
        return row

    def _append_event(
        self,
        session: Session,
        row: DeploymentRow,
        from_state: str | None,
        event: DeploymentEventInput,
    ) -> None:
        session.add(
            DeploymentEventRow(
                deployment_id=row.id,
                at=row.updated_at,
                kind=event.kind,
                actor=event.actor,
                reason=event.reason,
                from_state=from_state,
                to_state=row.state,
                weights=dict(row.weights),
                metrics=event.metrics,
            )
        )
        if self._postgres:
            # Delivered at commit, to sessions that LISTEN; cheaper than their polling.
            session.execute(select(func.pg_notify(DEPLOYMENT_CHANNEL, row.project)))


def _active_conflict(row: DeploymentRow | DeploymentRecord) -> ConflictError:
    return ConflictError(
        f"project {row.project!r} already has an active deployment {row.id} "
        f"({row.state}, created {row.created_at:%Y-%m-%d %H:%M:%S} UTC, last changed by "
        f"{row.actor}); "
        "promote, roll back or abort it before starting another"
    )
