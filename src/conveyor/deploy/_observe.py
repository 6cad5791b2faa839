"""What the controller sees of a deployment: its policy, its rollout state and both versions' stats.

A deployment record keeps the rollout policy it was started with (``config``), so a controller
judges it by that policy even when the spec has changed since or the policy was chosen on the
command line. Serving statistics come from the aggregates every replica writes; a shadow's
challenger is judged on its mirrored (``shadow``) requests, whose comparisons with the champion
feed the agreement criteria; an A/B test reads the outcomes clients reported for each version's
answers (``POST /outcomes``), or, for a built-in metric (``accuracy``, ``absolute_error``,
``squared_error``), the outcomes the ground-truth labels give (see :func:`observe`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Final

from conveyor.deploy._errors import RolloutError
from conveyor.deploy._guardrails import VersionStats
from conveyor.deploy._state import RolloutPolicy, RolloutState, RolloutStatus
from conveyor.spec import AbRollout, BlueGreenRollout, CanaryRollout, ShadowRollout

if TYPE_CHECKING:
    from conveyor.store import DeploymentRecord, MetadataStore, ServingStatsSummary

__all__ = [
    "POLICIES",
    "Observation",
    "OutcomeSource",
    "OutcomeValue",
    "QualitySource",
    "QualityValue",
    "observe",
    "override_policy",
    "recorded_policy",
    "step_count",
    "version_stats",
]

POLICIES: Final[Mapping[str, type[RolloutPolicy]]] = {
    "canary": CanaryRollout,
    "blue_green": BlueGreenRollout,
    "ab": AbRollout,
    "shadow": ShadowRollout,
}
"""The rollout policies by name (``direct`` moves all traffic at once and has no rollout)."""

QualityValue = tuple[float | None, int] | tuple[float | None, int, float | None]
"""``(live metric or None, labelled predictions[, its standard error or None])``."""
QualitySource = Callable[[Sequence[int], datetime], Mapping[tuple[int, bool], QualityValue]]
"""``(versions, since) -> {(version, shadow): QualityValue}``."""
OutcomeValue = tuple[int, float, float]
"""``(outcomes, their sum, the sum of their squares)`` of one version."""
OutcomeSource = Callable[[Sequence[int], datetime, str], Mapping[int, OutcomeValue]]
"""``(versions, since, metric) -> {version: OutcomeValue}`` (labelled predictions only)."""

_SHARED_FIELDS: Final = frozenset(
    {"min_requests_per_step", "min_seconds_per_step", "guardrails", "auto_rollback"}
)


def override_policy(rollout: RolloutPolicy, policy: str | None) -> RolloutPolicy:
    """The spec's ``rollout`` with another policy; steps and guardrails carry over.

    Args:
        rollout: The spec's ``rollout:`` section.
        policy: ``canary``, ``blue_green``, ``ab`` or ``shadow``; None keeps the spec's.

    Raises:
        RolloutError: ``policy`` is not a rollout policy.
    """
    if policy is None or policy == rollout.policy:
        return rollout
    model = POLICIES.get(policy)
    if model is None:
        known = ", ".join([*POLICIES, "direct"])
        raise RolloutError(f"unknown rollout policy {policy!r}; choose one of {known}")
    shared = rollout.model_dump(include=set(_SHARED_FIELDS))
    return model.model_validate({**shared, "policy": policy})


def recorded_policy(record: DeploymentRecord, fallback: RolloutPolicy | None) -> RolloutPolicy:
    """The policy recorded with the deployment, or ``fallback`` if it cannot be read back.

    Raises:
        RolloutError: Neither the record nor ``fallback`` (of the same policy) gives one.
    """
    from pydantic import ValidationError

    model = POLICIES.get(str(record.policy))
    if model is not None:
        try:
            return model.model_validate(record.config)
        except ValidationError:
            pass  # a config written by another version of Conveyor: fall back to the spec's
    if fallback is not None and fallback.policy == str(record.policy):
        return fallback
    raise RolloutError(
        f"deployment {record.id[:8]} has policy {str(record.policy)!r} but no readable rollout "
        "settings; abort it with `conveyor rollout abort --reason TEXT` and deploy again"
    )


def step_count(policy: RolloutPolicy) -> int:
    """Steps a rollout of ``policy`` goes through (canary: its steps; blue-green: warm-up, bake)."""
    if isinstance(policy, CanaryRollout):
        return len(policy.steps)
    return 2 if isinstance(policy, BlueGreenRollout) else 1


def version_stats(summary: ServingStatsSummary | None) -> VersionStats:
    """The guardrails' view of one version's summed serving statistics (empty for None)."""
    if summary is None:
        return VersionStats()
    return VersionStats(
        requests=summary.requests,
        errors=summary.errors,
        p95_ms=summary.latency_p95_ms,
        p99_ms=summary.latency_p99_ms,
        score_hist=tuple(summary.score_counts) if summary.n_scores else None,
        compared=summary.compared,
        agreed=summary.agreed,
        abs_diff_sum=summary.abs_diff_sum,
        outcome_n=summary.outcome_n,
        outcome_sum=summary.outcome_sum,
        outcome_sum_sq=summary.outcome_sum_sq,
    )


@dataclass(frozen=True)
class Observation:
    """One look at an active rollout: the inputs of :func:`~conveyor.deploy.decide`.

    Attributes:
        record: The deployment.
        policy: Its rollout policy.
        state: The rollout state at the time of the look.
        champion: The champion's statistics over the current step.
        challenger: The challenger's statistics over the current step (mirrored requests for
            a shadow).
        summaries: Every summary read, by ``(version, shadow)``.
    """

    record: DeploymentRecord
    policy: RolloutPolicy
    state: RolloutState
    champion: VersionStats
    challenger: VersionStats
    summaries: Mapping[tuple[int, bool], ServingStatsSummary]


def observe(
    store: MetadataStore,
    record: DeploymentRecord,
    *,
    now: datetime,
    fallback: RolloutPolicy | None = None,
    synthetic_ok: bool | None = None,
    quality_higher_is_better: bool = True,
    quality: QualitySource | None = None,
    outcomes: OutcomeSource | None = None,
) -> Observation:
    """Read the statistics of the deployment's current step and build the rollout state.

    Only windows that started at or after the step began are counted, so a new step is judged
    on its own traffic. ``quality``, when given, returns the live metric and labelled count of
    each ``(version, shadow)`` on predictions logged since the rollout began (labels joined to
    the prediction log; the whole rollout, because labels come late and thin and a 100% step
    leaves the champion nothing to be compared on); they feed the ``quality_drop`` guardrail.

    ``outcomes``, when given, returns each version's A/B outcomes derived from the labels of
    its predictions logged since the step began (for the A/B policy's ``metric``; nothing for
    an outcome named by the user). A version the labels give outcomes for is judged on them
    instead of the counts clients reported with ``POST /outcomes``: labels are the ground truth
    and cover every logged request, while clients may report a subset (or, reporting too,
    count twice). The reported counts remain for custom outcomes and while no label arrived.

    Raises:
        RolloutError: The deployment has no challenger or no readable policy.
    """
    if record.challenger_version is None:
        raise RolloutError(f"deployment {record.id[:8]} has no challenger version to roll out")
    policy = recorded_policy(record, fallback)
    champion, challenger = record.champion_version, record.challenger_version
    since = record.step_started_at or record.created_at
    summaries = store.serving_stats_summary(
        record.project, since=since, versions=(champion, challenger)
    )
    mirrored = isinstance(policy, ShadowRollout)
    state = RolloutState(
        policy=policy,
        state=_status(str(record.state)),
        step=record.step,
        step_started_at=since,
        champion=champion,
        challenger=challenger,
        weights=dict(record.weights),
        now=now,
        synthetic_ok=synthetic_ok,
        quality_higher_is_better=quality_higher_is_better,
    )
    old = version_stats(summaries.get((champion, False)))
    new = version_stats(summaries.get((challenger, mirrored)))
    if quality is not None:
        # Quality over the whole rollout, not the step: labels come late and thin, and at a
        # 100% step the champion serves nothing to compare with. Both versions are measured on
        # the same period of traffic.
        began = min(record.created_at, since)  # the rollout's start (its first step's)
        live = quality((champion, challenger), began)
        old = _with_quality(old, live.get((champion, False)))
        new = _with_quality(new, live.get((challenger, mirrored)))
    if outcomes is not None and isinstance(policy, AbRollout):
        labelled = outcomes((champion, challenger), since, policy.metric)
        old = _with_outcomes(old, labelled.get(champion))
        new = _with_outcomes(new, labelled.get(challenger))
    return Observation(
        record=record, policy=policy, state=state, champion=old, challenger=new, summaries=summaries
    )


def _with_quality(stats: VersionStats, live: QualityValue | None) -> VersionStats:
    if live is None or live[0] is None:
        return stats
    error = live[2] if len(live) > 2 else None  # the optional third item
    return replace(stats, quality=live[0], quality_n=live[1], quality_se=error)


def _with_outcomes(stats: VersionStats, labelled: OutcomeValue | None) -> VersionStats:
    if labelled is None or labelled[0] <= 0:
        return stats
    n, total, squares = labelled
    return replace(stats, outcome_n=n, outcome_sum=total, outcome_sum_sq=squares)


def _status(value: str) -> RolloutStatus:
    statuses: dict[str, RolloutStatus] = {
        "pending": "pending",
        "rolling": "rolling",
        "paused": "paused",
        "promoted": "promoted",
        "rolled_back": "rolled_back",
        "failed": "failed",
    }
    return statuses[value]
