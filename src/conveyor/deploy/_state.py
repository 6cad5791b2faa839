"""What the rollout controller knows (:class:`RolloutState`) and decides (:class:`Decision`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from conveyor.spec import AbRollout, BlueGreenRollout, CanaryRollout, ShadowRollout

__all__ = [
    "TERMINAL_STATES",
    "Action",
    "Decision",
    "RolloutPolicy",
    "RolloutState",
    "RolloutStatus",
]

RolloutPolicy = CanaryRollout | BlueGreenRollout | AbRollout | ShadowRollout
"""A ``rollout:`` policy from the spec."""

RolloutStatus = Literal["pending", "rolling", "paused", "promoted", "rolled_back", "failed"]
"""Where a deployment's rollout stands."""

TERMINAL_STATES: Final = frozenset({"promoted", "rolled_back", "failed"})
"""States a rollout never leaves."""

Action = Literal["hold", "advance", "promote", "rollback", "complete", "none"]
"""What the controller should do.

``hold`` keeps the weights; ``advance`` applies the next step's weights; ``promote`` sends all
traffic to the challenger and makes it the champion; ``rollback`` sends all traffic back to the
champion (the alias is unchanged); ``complete`` ends an experiment that leaves the decision to a
person (shadow without promotion criteria); ``none`` means there is nothing to do.
"""


@dataclass(frozen=True)
class RolloutState:
    """A deployment's rollout as recorded in the metadata store, at time ``now``.

    Args:
        policy: The rollout policy.
        state: Where the rollout stands.
        step: Index of the current step (canary: into ``policy.steps``; blue-green: 0 warm-up,
            1 bake; A/B: 0; shadow: 0 comparing, 1 complete).
        step_started_at: When the current step began (same time zone awareness as ``now``).
        champion: Version that serves traffic today.
        challenger: Version being rolled out.
        weights: Current traffic percent per version.
        now: The time of the decision.
        synthetic_ok: Blue-green: whether the warmed challenger answered its synthetic
            requests without error; None while they have not run.
        quality_higher_is_better: Direction of the quality metric behind ``quality_drop``.
    """

    policy: RolloutPolicy
    state: RolloutStatus
    step: int
    step_started_at: datetime
    champion: int
    challenger: int
    weights: Mapping[int, float]
    now: datetime
    synthetic_ok: bool | None = None
    quality_higher_is_better: bool = True

    def __post_init__(self) -> None:
        if self.champion == self.challenger:
            raise ValueError(f"champion and challenger are the same version ({self.champion})")
        if self.step < 0:
            raise ValueError(f"step must be 0 or more, found {self.step}")

    @property
    def elapsed_seconds(self) -> float:
        """Seconds since the step began (0 if clocks disagree and it seems to lie ahead)."""
        return max(0.0, (self.now - self.step_started_at).total_seconds())


@dataclass(frozen=True)
class Decision:
    """What to do next and why.

    Args:
        action: The action.
        weights: Traffic percent per version after the action.
        step: Step index after the action.
        reason: One human-readable sentence with the numbers that justified the action.
        metrics: The numbers, by name, for the event history.
        guardrail: Name of the breached guardrail (``error_rate``, ``p99_latency_ms``,
            ``prediction_psi``, ``quality_drop``, ``synthetic``), if one was.
    """

    action: Action
    weights: dict[int, float]
    step: int
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)
    guardrail: str | None = None
