"""Records of deployments, their event history and the serving statistics behind decisions.

Like the other records, these are frozen dataclasses built fresh for every call. Model
versions are the registry's version numbers (positive integers); traffic weights map a
version to the percentage of callers' requests it answers.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "DeploymentEvent",
    "DeploymentEventInput",
    "DeploymentPolicy",
    "DeploymentRecord",
    "DeploymentStamp",
    "DeploymentState",
    "ServingStatsInput",
    "ServingStatsSummary",
]


class DeploymentState(enum.StrEnum):
    """Lifecycle of a deployment.

    ``pending``, ``rolling`` and ``paused`` are active: a project has at most one active
    deployment. ``promoted``, ``rolled_back`` and ``failed`` are terminal: the deployment never
    changes again.
    """

    PENDING = "pending"
    ROLLING = "rolling"
    PAUSED = "paused"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """Whether the deployment is still in progress."""
        return self in _ACTIVE

    @property
    def terminal(self) -> bool:
        """Whether the deployment is over and can no longer change."""
        return not self.active


_ACTIVE = frozenset({DeploymentState.PENDING, DeploymentState.ROLLING, DeploymentState.PAUSED})


class DeploymentPolicy(enum.StrEnum):
    """How a deployment moves traffic (``direct``: all at once, without a rollout)."""

    CANARY = "canary"
    BLUE_GREEN = "blue_green"
    AB = "ab"
    SHADOW = "shadow"
    DIRECT = "direct"


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    """One deployment of a project: which versions serve, with which weights, and where it is.

    Attributes:
        id: 32 lowercase hex characters (a uuid4); any unique prefix of 4+ characters finds it.
        project: Name of the project.
        champion_version: The version serving before the deployment started.
        challenger_version: The version being rolled out, or ``None``.
        policy: How traffic moves.
        config: The rollout spec (steps, guardrails, ...), as JSON.
        weights: Version to percentage of callers' requests it answers; sums to 100. Only
            ``champion_version`` and ``challenger_version`` appear.
        shadow_version: A version that receives copies of requests and never answers, or
            ``None``.
        shadow_rate: Share (0 to 1) of requests copied to ``shadow_version``.
        state: Where the deployment is in its lifecycle.
        step: Index of the current step of the policy (canary steps), from 0.
        step_started_at: When the current step started (aware, UTC), or ``None``.
        created_at: When the deployment was created (aware, UTC).
        updated_at: When it last changed (aware, UTC).
        actor: Who made the last change (or created it).
        reason: Why, in the actor's words.
        version: Optimistic-lock counter: 1 at creation, +1 on every change.
    """

    id: str
    project: str
    champion_version: int
    challenger_version: int | None
    policy: DeploymentPolicy
    config: dict[str, Any]
    weights: dict[int, float]
    shadow_version: int | None
    shadow_rate: float
    state: DeploymentState
    step: int
    step_started_at: datetime | None
    created_at: datetime
    updated_at: datetime
    actor: str
    reason: str
    version: int


@dataclass(frozen=True, slots=True)
class DeploymentStamp:
    """What a serving replica polls: it reloads the deployment when the stamp changes.

    Attributes:
        id: Id of the project's newest deployment.
        version: That deployment's ``version``.
    """

    id: str
    version: int


@dataclass(frozen=True, slots=True)
class DeploymentEventInput:
    """The decision that explains a change to a deployment; recorded with the change.

    Attributes:
        kind: What happened: ``created``, ``weights``, ``advanced``, ``paused``, ``resumed``,
            ``promoted``, ``rolled_back``, ``failed``, ``guardrail``, ``note``, ...
        actor: Who decided (a user, or the controller's identity).
        reason: Why, in words a person reading the history understands.
        metrics: The numbers that justified the decision, as JSON.
    """

    kind: str
    actor: str
    reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeploymentEvent:
    """One entry of a deployment's append-only history.

    Attributes:
        id: Increasing sequence number (orders the history).
        deployment_id: The deployment it belongs to.
        at: When it was recorded (aware, UTC).
        kind: What happened (see :class:`DeploymentEventInput`).
        actor: Who decided.
        reason: Why.
        from_state: The state before the change (``None`` for ``created``).
        to_state: The state after it.
        weights: The traffic weights after it.
        metrics: The numbers that justified it.
    """

    id: int
    deployment_id: str
    at: datetime
    kind: str
    actor: str
    reason: str
    from_state: DeploymentState | None
    to_state: DeploymentState
    weights: dict[int, float]
    metrics: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ServingStatsInput:
    """What one replica counted for one model version in one statistics window.

    Attributes:
        model_version: The version that served (or shadowed) the requests.
        window: Any instant in the window; the store truncates it to the window's start.
        requests: Requests answered (or shadowed).
        errors: Of those, the ones that failed.
        latency_counts: Requests per latency bucket (``len(LATENCY_BUCKETS_MS) + 1`` counts;
            see :func:`~conveyor.store.latency_bucket`), or empty for none.
        latency_ms_sum: Sum of the latencies counted, in milliseconds.
        score_counts: Predicted probabilities per bin (``SCORE_BINS`` counts; see
            :func:`~conveyor.store.score_bin`), or empty for none (e.g. regression).
        shadow: Whether these are shadow predictions, kept apart from answered ones.
        compared: Predictions compared with the champion's answer to the same request
            (shadow predictions, usually).
        agreed: Of those, the ones predicting the same class as the champion.
        abs_diff_sum: Sum over the compared predictions of the absolute difference of score.
        outcome_n: Outcomes (labels of an A/B test's metric) that clients reported for
            requests this version answered.
        outcome_sum: Sum of those outcomes (successes, for 0/1 outcomes).
        outcome_sum_sq: Sum of their squares (the variance of a continuous outcome).
    """

    model_version: int
    window: datetime
    requests: int
    errors: int = 0
    latency_counts: Sequence[int] = ()
    latency_ms_sum: float = 0.0
    score_counts: Sequence[int] = ()
    shadow: bool = False
    compared: int = 0
    agreed: int = 0
    abs_diff_sum: float = 0.0
    outcome_n: int = 0
    outcome_sum: float = 0.0
    outcome_sum_sq: float = 0.0


@dataclass(frozen=True, slots=True)
class ServingStatsSummary:
    """One model version's serving statistics, summed over replicas and windows.

    Latency quantiles are interpolated linearly inside the bucket that holds them (see
    :func:`~conveyor.store.latency_quantile`); they are ``None`` without observations.

    Attributes:
        model_version: The version.
        shadow: Whether these are shadow predictions.
        requests: Requests.
        errors: Failed requests.
        error_rate: ``errors / requests``, or ``None`` without requests.
        latency_p50_ms: Estimated median latency.
        latency_p95_ms: Estimated 95th-percentile latency.
        latency_p99_ms: Estimated 99th-percentile latency.
        latency_mean_ms: Mean latency, or ``None`` without observations.
        latency_counts: Merged latency histogram (buckets of ``LATENCY_BUCKETS_MS``).
        score_counts: Merged histogram of predicted probabilities (``SCORE_BINS`` bins).
        n_scores: Number of scores in ``score_counts``.
        compared: Predictions compared with the champion's on the same request.
        agreed: Of those, the ones that agreed with the champion.
        agreement_rate: ``agreed / compared``, or ``None`` without comparisons.
        abs_diff_sum: Sum of the absolute score differences of the compared predictions.
        outcome_n: Outcomes reported for the version's answers (A/B tests).
        outcome_sum: Sum of those outcomes.
        outcome_sum_sq: Sum of their squares.
        outcome_mean: ``outcome_sum / outcome_n``, or ``None`` without outcomes.
        replicas: Number of distinct replicas that reported.
        first_window: Start of the earliest window counted (aware, UTC).
        last_window: Start of the latest window counted (aware, UTC).
    """

    model_version: int
    shadow: bool
    requests: int
    errors: int
    error_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    latency_mean_ms: float | None
    latency_counts: list[int]
    score_counts: list[int]
    n_scores: int
    compared: int
    agreed: int
    agreement_rate: float | None
    abs_diff_sum: float
    outcome_n: int
    outcome_sum: float
    outcome_sum_sq: float
    outcome_mean: float | None
    replicas: int
    first_window: datetime
    last_window: datetime
