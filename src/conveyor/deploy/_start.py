"""Starting a deployment: a rollout of a new version against the champion, or a direct switch.

A rollout starts ``rolling`` at its first step, with the weights :func:`~conveyor.deploy.decide`
gives a pending rollout: canary its first step, blue-green the challenger warm at 0 %, A/B the
split, shadow the champion at 100 % with the challenger mirrored. ``direct`` moves the MLflow
``champion`` alias at once and records a finished (``promoted``) deployment, so every replica
switches; it is also how a project's first version goes live.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from conveyor.deploy._errors import RolloutError
from conveyor.deploy._guardrails import VersionStats
from conveyor.deploy._observe import override_policy
from conveyor.deploy._policy import decide
from conveyor.deploy._state import RolloutPolicy, RolloutState
from conveyor.deploy._transitions import audit, json_metrics, move_champion, require_reason, utcnow
from conveyor.spec import ShadowRollout

if TYPE_CHECKING:
    from conveyor.registry import ModelRegistry
    from conveyor.store import DeploymentRecord, MetadataStore

__all__ = ["record_direct", "start_deployment"]

DIRECT = "direct"


def start_deployment(
    store: MetadataStore,
    registry: ModelRegistry,
    project: str,
    rollout: RolloutPolicy,
    *,
    version: int | str | None = None,
    policy: str | None = None,
    actor: str,
    reason: str,
    now: datetime | None = None,
) -> DeploymentRecord:
    """Start rolling ``version`` out against the champion, or switch to it directly.

    Args:
        store: The metadata store.
        registry: The project's registered model.
        project: The project's name.
        rollout: The spec's ``rollout:`` policy.
        version: A version number or alias (default: the ``challenger`` alias).
        policy: ``canary``, ``blue_green``, ``ab``, ``shadow`` or ``direct`` instead of the
            spec's policy; steps and guardrails carry over from the spec.
        actor: Who deploys.
        reason: Why (required).
        now: When the first step starts (default: now).

    Returns:
        The new deployment.

    Raises:
        RolloutError: No reason, no version given and no challenger alias, the version already
            is the champion, no champion to roll out against (except ``direct``), an unknown
            policy, or a rollout already in progress.
        ModelVersionNotFoundError: No such version.
        ConflictError: Another deployment became active at the same moment.
    """
    from conveyor.registry import CHALLENGER, CHAMPION

    why = require_reason(reason)
    if version is None:
        target = registry.alias(CHALLENGER)
        if target is None:
            raise RolloutError(
                f"model {registry.name!r} has no challenger alias; name the version to deploy: "
                "`conveyor deploy VERSION --reason TEXT` (`conveyor models list` shows them)"
            )
    else:
        target = registry.get(version)
    champion = registry.alias(CHAMPION)
    _no_active(store, project)
    if champion is not None and champion.version == target.version:
        raise RolloutError(
            f"version {target.version} of {registry.name!r} already is the champion; "
            "deploy another version"
        )
    started = now or utcnow()
    if policy == DIRECT:
        serving = None if champion is None else champion.version
        move_champion(store, registry, target.version, actor=actor, reason=why)
        return record_direct(
            store,
            project,
            serving=serving,
            version=target.version,
            actor=actor,
            reason=why,
            now=started,
        )
    if champion is None:
        raise RolloutError(
            f"model {registry.name!r} has no champion to roll v{target.version} out against; "
            f"put a first version live with `conveyor deploy {target.version} --policy direct "
            "--reason TEXT`"
        )
    chosen = override_policy(rollout, policy)
    old, new = champion.version, target.version
    pending = RolloutState(
        policy=chosen,
        state="pending",
        step=0,
        step_started_at=started,
        champion=old,
        challenger=new,
        weights={old: 100.0, new: 0.0},
        now=started,
    )
    plan = decide(pending, VersionStats(), VersionStats())
    mirrored = isinstance(chosen, ShadowRollout)
    record = store.create_deployment(
        project=project,
        champion_version=old,
        challenger_version=new,
        policy=chosen.policy,
        config=chosen.model_dump(mode="json"),
        weights=plan.weights,
        shadow_version=new if mirrored else None,
        shadow_rate=chosen.sample_rate if isinstance(chosen, ShadowRollout) else 0.0,
        state="rolling",
        step=0,
        step_started_at=started,
        actor=actor,
        reason=why,
        metrics={"plan": plan.reason},
    )
    audit(store, record, "deploy", actor=actor, reason=why, plan=plan.reason)
    return record


def record_direct(
    store: MetadataStore,
    project: str,
    *,
    serving: int | None,
    version: int,
    actor: str,
    reason: str,
    now: datetime | None = None,
    metrics: dict[str, Any] | None = None,
) -> DeploymentRecord:
    """Record a finished ``direct`` deployment sending all traffic to ``version``.

    Args:
        serving: The version that served before (None for a project's first deployment).
        version: The version that serves from now on.
    """
    if serving is None or serving == version:
        champion, challenger, weights = version, None, {version: 100.0}
    else:
        champion, challenger, weights = serving, version, {serving: 0.0, version: 100.0}
    record = store.create_deployment(
        project=project,
        champion_version=champion,
        challenger_version=challenger,
        policy=DIRECT,
        config={},
        weights=weights,
        state="promoted",
        step=0,
        step_started_at=now or utcnow(),
        actor=actor,
        reason=reason,
        metrics=json_metrics(metrics or {}),
    )
    audit(store, record, "deploy", actor=actor, reason=reason, serving=version)
    return record


def _no_active(store: MetadataStore, project: str) -> None:
    active = store.active_deployment(project)
    if active is None:
        return
    raise RolloutError(
        f"project {project!r} already has a rollout in progress: deployment {active.id[:8]} "
        f"({active.policy} of v{active.challenger_version} against v{active.champion_version}, "
        f"{active.state}, last changed by {active.actor}); finish it first with "
        "`conveyor rollout promote --reason TEXT` or `conveyor rollout abort --reason TEXT`"
    )
