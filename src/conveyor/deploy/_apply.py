"""Applying the controller's decisions to a deployment: new weights, new step, or the end.

Each decision becomes one compare-and-set of the deployment with the event that explains it
(the decision's reason and metrics); the end of a rollout also lands in the audit log. A shadow
started by someone else (``pending``) gets its mirror when it starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from conveyor.deploy._observe import Observation
from conveyor.deploy._state import Decision
from conveyor.deploy._synthetic import SyntheticResult
from conveyor.deploy._transitions import audit, event, mark_promoted, mark_rolled_back
from conveyor.spec import ShadowRollout

if TYPE_CHECKING:
    from conveyor.registry import ModelRegistry
    from conveyor.store import DeploymentRecord, MetadataStore

__all__ = ["CONTROLLER_ACTOR", "apply_decision", "controller_lease", "with_synthetic"]

CONTROLLER_ACTOR: Final = "controller"
"""The actor of the controller's events, promotions and audit entries."""


def controller_lease(project: str) -> str:
    """The lease a project's controllers compete for: ``controller:<project>``."""
    return f"controller:{project}"


def apply_decision(
    store: MetadataStore,
    seen: Observation,
    decision: Decision,
    *,
    now: datetime,
    registry: Callable[[], ModelRegistry],
    actor: str = CONTROLLER_ACTOR,
) -> DeploymentRecord:
    """Apply an ``advance``, ``complete``, ``promote`` or ``rollback`` decision.

    Args:
        store: The metadata store.
        seen: What the decision was made on (the deployment as read).
        decision: The decision.
        now: When the decision was made (the start of a new step).
        registry: Returns the project's registry (only a promotion needs it).
        actor: Who decided.

    Returns:
        The deployment after the change.

    Raises:
        ConflictError: The deployment changed since it was read; nothing was applied.
        ValueError: The action changes nothing (``hold``, ``none``).
    """
    record, reason, metrics = seen.record, decision.reason, decision.metrics
    if decision.action == "promote":
        after = mark_promoted(
            store, registry(), record, actor=actor, reason=reason, metrics=metrics
        )
        audit(store, after, "rollout.promote", actor=actor, reason=reason)
        return after
    if decision.action == "rollback":
        after = mark_rolled_back(
            store,
            record,
            kind="rolled_back",
            actor=actor,
            reason=reason,
            metrics={**metrics, "guardrail": decision.guardrail},
        )
        audit(store, after, "rollout.rollback", actor=actor, reason=reason, **_guardrail(decision))
        return after
    if decision.action == "complete":
        return store.update_deployment(
            record.id,
            expected_version=record.version,
            event=event("completed", actor, reason, metrics),
            step=decision.step,
            step_started_at=now,
        )
    if decision.action != "advance":
        raise ValueError(f"a {decision.action!r} decision changes nothing to apply")
    mirror: dict[str, Any] = {}
    if isinstance(seen.policy, ShadowRollout) and record.shadow_version is None:
        mirror = {
            "shadow_version": record.challenger_version,
            "shadow_rate": seen.policy.sample_rate,
        }
    return store.update_deployment(
        record.id,
        expected_version=record.version,
        event=event("started" if record.state == "pending" else "advanced", actor, reason, metrics),
        state="rolling",
        weights=decision.weights,
        step=decision.step,
        step_started_at=now,
        **mirror,
    )


def _guardrail(decision: Decision) -> dict[str, Any]:
    return {"guardrail": decision.guardrail} if decision.guardrail else {}


def with_synthetic(decision: Decision, synthetic: SyntheticResult | None) -> Decision:
    """The decision with the synthetic requests' outcome in its metrics (and reason, if failed)."""
    if synthetic is None:
        return decision
    metrics = {
        **decision.metrics,
        "synthetic_requests": float(synthetic.requests),
        "synthetic_failures": float(synthetic.failures),
    }
    reason = decision.reason
    if decision.guardrail == "synthetic":
        reason = f"{reason} ({synthetic.detail})"
    return dataclasses.replace(decision, metrics=metrics, reason=reason)
