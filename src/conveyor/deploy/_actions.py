"""People's actions on a project's rollout: pause, resume, promote, abort and roll back.

Each needs a reason, acts on the project's active deployment, is recorded as an event of that
deployment and as an entry in the audit log, and returns the deployment as it now stands. When
the controller changes the deployment between our read and our write (it advanced a step, say),
the action reads it again and retries, so a person never has to race the controller.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Final

from conveyor.deploy._errors import RolloutError
from conveyor.deploy._start import record_direct
from conveyor.deploy._transitions import (
    audit,
    event,
    mark_promoted,
    mark_rolled_back,
    require_reason,
    utcnow,
)
from conveyor.errors import ConflictError

if TYPE_CHECKING:
    from conveyor.registry import ModelRegistry
    from conveyor.store import DeploymentRecord, MetadataStore

__all__ = [
    "abort_rollout",
    "active_rollout",
    "pause_rollout",
    "promote_rollout",
    "resume_rollout",
    "rollback_deployment",
]

_ATTEMPTS: Final = 5


def active_rollout(store: MetadataStore, project: str) -> DeploymentRecord:
    """The project's rollout in progress.

    Raises:
        RolloutError: There is none; the message says what the latest deployment became.
    """
    record = store.active_deployment(project)
    if record is not None:
        return record
    latest = store.latest_deployment(project)
    if latest is None:
        found = f"project {project!r} has never been deployed"
    else:
        found = (
            f"project {project!r} has no rollout in progress: its latest deployment "
            f"{latest.id[:8]} ({latest.policy} of v{latest.challenger_version or '-'}) is "
            f"{latest.state} since {latest.updated_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    raise RolloutError(f"{found}; start one with `conveyor deploy [VERSION] --reason TEXT`")


def _retrying(
    store: MetadataStore, project: str, act: Callable[[DeploymentRecord], DeploymentRecord]
) -> DeploymentRecord:
    for attempt in range(_ATTEMPTS):
        record = active_rollout(store, project)
        try:
            return act(record)
        except ConflictError:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def pause_rollout(
    store: MetadataStore, project: str, *, actor: str, reason: str
) -> DeploymentRecord:
    """Stop the rollout where it is: the weights stay, the controller stops deciding.

    Raises:
        RolloutError: No rollout in progress, or it is not rolling.
    """
    why = require_reason(reason)

    def act(record: DeploymentRecord) -> DeploymentRecord:
        if record.state == "paused":
            raise RolloutError(
                f"deployment {record.id[:8]} is already paused; continue it with "
                "`conveyor rollout resume --reason TEXT`"
            )
        if record.state != "rolling":
            raise RolloutError(
                f"deployment {record.id[:8]} is {record.state}, not rolling: it has not started "
                "yet; abort it with `conveyor rollout abort --reason TEXT` instead"
            )
        return store.update_deployment(
            record.id,
            expected_version=record.version,
            event=event("paused", actor, why, {"step": record.step}),
            state="paused",
        )

    paused = _retrying(store, project, act)
    audit(store, paused, "rollout.pause", actor=actor, reason=why)
    return paused


def resume_rollout(
    store: MetadataStore,
    project: str,
    *,
    actor: str,
    reason: str,
    now: datetime | None = None,
) -> DeploymentRecord:
    """Continue a paused rollout; its current step starts over (time and requests).

    Restarting the step means it is judged again on traffic seen after the pause, for its full
    minimum time and requests, before the next step.

    Raises:
        RolloutError: No rollout in progress, or it is not paused.
    """
    why = require_reason(reason)

    def act(record: DeploymentRecord) -> DeploymentRecord:
        if record.state != "paused":
            raise RolloutError(
                f"deployment {record.id[:8]} is {record.state}, not paused; "
                "`conveyor rollout status` shows where it stands"
            )
        return store.update_deployment(
            record.id,
            expected_version=record.version,
            event=event("resumed", actor, why, {"step": record.step}),
            state="rolling",
            step_started_at=now or utcnow(),
        )

    resumed = _retrying(store, project, act)
    audit(store, resumed, "rollout.resume", actor=actor, reason=why)
    return resumed


def promote_rollout(
    store: MetadataStore, registry: ModelRegistry, project: str, *, actor: str, reason: str
) -> DeploymentRecord:
    """End the rollout now: all traffic to the challenger, which becomes the MLflow champion.

    Raises:
        RolloutError: No rollout in progress.
        RegistryError, TrackingError: MLflow refused to move the alias (nothing changed).
    """
    why = require_reason(reason)

    def act(record: DeploymentRecord) -> DeploymentRecord:
        return mark_promoted(
            store, registry, record, actor=actor, reason=why, metrics={"manual": True}
        )

    promoted = _retrying(store, project, act)
    audit(store, promoted, "rollout.promote", actor=actor, reason=why)
    return promoted


def abort_rollout(
    store: MetadataStore, project: str, *, actor: str, reason: str
) -> DeploymentRecord:
    """End the rollout now: all traffic back to the champion; the alias does not move.

    Raises:
        RolloutError: No rollout in progress.
    """
    why = require_reason(reason)

    def act(record: DeploymentRecord) -> DeploymentRecord:
        return mark_rolled_back(
            store, record, kind="aborted", actor=actor, reason=why, metrics={"manual": True}
        )

    aborted = _retrying(store, project, act)
    audit(store, aborted, "rollout.abort", actor=actor, reason=why)
    return aborted


def rollback_deployment(
    store: MetadataStore,
    registry: ModelRegistry,
    project: str,
    *,
    actor: str,
    reason: str,
    now: datetime | None = None,
) -> DeploymentRecord:
    """Undo the latest change: abort the rollout in progress, else restore the previous champion.

    Without a rollout in progress, the ``champion`` alias goes back to the version the current
    champion replaced (:meth:`ModelRegistry.rollback <conveyor.registry.ModelRegistry.rollback>`)
    and a ``direct`` deployment records the switch, so every replica serves it again.

    Raises:
        RegistryError: No champion, or no previous champion to return to.
    """
    from conveyor.registry import CHAMPION

    why = require_reason(reason)
    if store.active_deployment(project) is not None:
        return abort_rollout(store, project, actor=actor, reason=why)
    before = registry.alias(CHAMPION)
    restored = registry.rollback(reason=why, actor=actor, store=store)
    previous = None if before is None else before.version
    return record_direct(
        store,
        project,
        serving=previous,
        version=restored.version,
        actor=actor,
        reason=why,
        now=now,
        metrics={"rollback_from": previous, "rollback_to": restored.version},
    )
