"""The changes a rollout goes through, shared by people's commands and the controller.

Every change is one compare-and-set of the deployment (``expected_version``) together with the
event that explains it; people's actions also land in the audit log. Ending a rollout clears
the shadow mirror. Promoting moves the MLflow ``champion`` alias *before* the deployment is
marked promoted: if MLflow is unreachable nothing changes and the controller simply tries again
at its next tick, and a retry finds the alias already moved and only records the promotion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conveyor.deploy._errors import RolloutError

if TYPE_CHECKING:
    from conveyor.registry import ModelRegistry
    from conveyor.store import DeploymentEventInput, DeploymentRecord, MetadataStore

__all__ = [
    "audit",
    "deployment_target",
    "event",
    "json_metrics",
    "mark_promoted",
    "mark_rolled_back",
    "move_champion",
    "require_reason",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, aware and in UTC."""
    return datetime.now(UTC)


def require_reason(reason: str) -> str:
    """The reason, stripped; people's actions must say why.

    Raises:
        RolloutError: The reason is empty.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise RolloutError("a reason is required: say why, e.g. --reason 'p99 regression on EU'")
    return reason.strip()


def json_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics as the store keeps them: JSON, with NaN and infinities as null."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    cleaned: dict[str, Any] = clean(metrics)
    return cleaned


def event(
    kind: str, actor: str, reason: str, metrics: Mapping[str, Any] | None = None
) -> DeploymentEventInput:
    """The event explaining a change (the store is imported only when one is recorded)."""
    from conveyor.store import DeploymentEventInput

    return DeploymentEventInput(
        kind=kind, actor=actor, reason=reason, metrics=json_metrics(metrics or {})
    )


def deployment_target(record: DeploymentRecord) -> str:
    """How audit entries name a deployment: ``deployment:<id>``."""
    return f"deployment:{record.id}"


def audit(
    store: MetadataStore,
    record: DeploymentRecord,
    action: str,
    *,
    actor: str,
    reason: str,
    **details: Any,
) -> None:
    """Append an audit entry about the deployment, with its versions and weights."""
    store.append_audit(
        actor=actor,
        action=action,
        target=deployment_target(record),
        reason=reason,
        details=json_metrics(
            {
                "project": record.project,
                "policy": str(record.policy),
                "state": str(record.state),
                "champion": record.champion_version,
                "challenger": record.challenger_version,
                "weights": {str(v): w for v, w in record.weights.items()},
                **details,
            }
        ),
    )


def move_champion(
    store: MetadataStore, registry: ModelRegistry, version: int, *, actor: str, reason: str
) -> bool:
    """Give ``version`` the ``champion`` alias unless it has it already; True if it moved."""
    from conveyor.registry import CHAMPION

    current = registry.alias(CHAMPION)
    if current is not None and current.version == version:
        return False
    registry.promote(version, reason=reason, actor=actor, store=store)
    return True


def mark_promoted(
    store: MetadataStore,
    registry: ModelRegistry,
    record: DeploymentRecord,
    *,
    actor: str,
    reason: str,
    metrics: Mapping[str, Any] | None = None,
) -> DeploymentRecord:
    """Move the alias to the challenger, then send it all traffic and mark the rollout promoted.

    Raises:
        ConflictError: The deployment changed since ``record`` was read.
    """
    new = _challenger(record)
    moved = move_champion(store, registry, new, actor=actor, reason=reason)
    return store.update_deployment(
        record.id,
        expected_version=record.version,
        event=event("promoted", actor, reason, {**(metrics or {}), "alias_moved": moved}),
        state="promoted",
        weights={record.champion_version: 0.0, new: 100.0},
        shadow_version=None,
        shadow_rate=0.0,
    )


def mark_rolled_back(
    store: MetadataStore,
    record: DeploymentRecord,
    *,
    kind: str,
    actor: str,
    reason: str,
    metrics: Mapping[str, Any] | None = None,
) -> DeploymentRecord:
    """Send all traffic back to the champion and end the rollout; the alias stays put.

    Raises:
        ConflictError: The deployment changed since ``record`` was read.
    """
    weights = {record.champion_version: 100.0}
    if record.challenger_version is not None:
        weights[record.challenger_version] = 0.0
    return store.update_deployment(
        record.id,
        expected_version=record.version,
        event=event(kind, actor, reason, metrics),
        state="rolled_back",
        weights=weights,
        shadow_version=None,
        shadow_rate=0.0,
    )


def _challenger(record: DeploymentRecord) -> int:
    if record.challenger_version is None:
        raise RolloutError(
            f"deployment {record.id[:8]} has no challenger: there is nothing to promote"
        )
    return record.challenger_version
