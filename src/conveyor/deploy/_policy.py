"""The rollout controller's decision function: pure, so every rule is testable with plain values.

:func:`decide` reads a :class:`~conveyor.deploy.RolloutState` and both versions' aggregates over
the current step and returns a :class:`~conveyor.deploy.Decision`; the controller applies it
(weights, aliases, events). The rules:

- ``paused`` and the terminal states (``promoted``, ``rolled_back``, ``failed``): ``none``.
- ``pending``: ``advance`` to step 0 (the controller gives traffic only once the challenger has
  loaded).
- ``rolling``: first the guardrails (error rate, p99 latency, PSI of the challenger's predictions
  against the champion's, quality drop; see :mod:`._guardrails`). A breach rolls back at once,
  or holds with the reason when ``auto_rollback`` is off. Then the policy:

  - canary: a step ends once the challenger has served ``min_requests_per_step`` requests (never
    fewer than ``guardrails.min_requests``) over at least ``min_seconds_per_step``; it advances
    to the next step, and the last (100 %) step promotes.
  - blue-green: step 0 warms the challenger at 0 % while the controller sends it synthetic
    requests (``synthetic_ok``); a failure counts as the ``synthetic`` guardrail. Success switches
    all traffic at once (step 1, the bake: the champion stays loaded at 0 % for an instant
    rollback); after ``bake_seconds`` and ``min_requests_per_step`` it promotes.
  - A/B and shadow: see :mod:`._experiments`.
"""

from __future__ import annotations

from conveyor.deploy._decisions import Step, all_to, split
from conveyor.deploy._experiments import ab, shadow
from conveyor.deploy._guardrails import VersionStats
from conveyor.deploy._state import TERMINAL_STATES, Decision, RolloutState
from conveyor.spec import AbRollout, BlueGreenRollout, CanaryRollout

__all__ = ["decide"]


def decide(state: RolloutState, champion: VersionStats, challenger: VersionStats) -> Decision:
    """What the controller should do now (see the module docstring for the rules).

    Args:
        state: The rollout, with the current time.
        champion: The champion's aggregates over the current step.
        challenger: The challenger's aggregates over the current step (for a shadow: over the
            requests mirrored to it).
    """
    if state.state in TERMINAL_STATES or state.state == "paused":
        why = "resume it to continue" if state.state == "paused" else "nothing left to do"
        return Decision("none", dict(state.weights), state.step, f"rollout is {state.state}: {why}")
    if state.state == "pending":
        return _start(state)
    policy = state.policy
    if isinstance(policy, CanaryRollout):
        return _canary(state, policy, champion, challenger)
    if isinstance(policy, BlueGreenRollout):
        return _blue_green(state, policy, champion, challenger)
    if isinstance(policy, AbRollout):
        return ab(state, policy, champion, challenger)
    return shadow(state, policy, champion, challenger)


def _start(state: RolloutState) -> Decision:
    policy, new, old = state.policy, state.challenger, state.champion
    if isinstance(policy, CanaryRollout):
        first = policy.steps[0]
        return Decision(
            "advance",
            split(state, first),
            0,
            f"starting canary of v{new}: step 1/{len(policy.steps)} sends it {first:g}% of traffic",
        )
    if isinstance(policy, BlueGreenRollout):
        checks = policy.synthetic_requests
        extra = f" and sending it {checks} synthetic requests" if checks else ""
        return Decision(
            "advance",
            all_to(old, state),
            0,
            f"starting blue-green: warming v{new} beside v{old} with no traffic{extra}",
        )
    if isinstance(policy, AbRollout):
        return Decision(
            "advance",
            split(state, policy.split),
            0,
            f"starting A/B test: {policy.split:g}% of traffic to v{new}, "
            f"{100 - policy.split:g}% to v{old}, compared on {policy.metric} "
            f"with a {policy.test} test",
        )
    return Decision(
        "advance",
        all_to(old, state),
        0,
        f"starting shadow: mirroring {policy.sample_rate * 100:g}% of requests to v{new}; "
        f"callers still get v{old}'s answers",
    )


def _canary(
    state: RolloutState, policy: CanaryRollout, champion: VersionStats, challenger: VersionStats
) -> Decision:
    steps = policy.steps
    index = min(state.step, len(steps) - 1)  # a spec edited mid-rollout to fewer steps
    step = Step(
        state, f"canary step {index + 1}/{len(steps)} ({steps[index]:g}%)", champion, challenger
    )
    step.metrics["step_percent"] = steps[index]
    decision = step.breach() or step.wait(policy.min_seconds_per_step)
    if decision is not None:
        return decision
    if index == len(steps) - 1:
        return step.decision(
            "promote",
            f" {step.held}: {step.summary} → promoting v{state.challenger}",
            weights=all_to(state.challenger, state),
        )
    following = steps[index + 1]
    return step.decision(
        "advance",
        f" {step.held}: {step.summary} → advancing to {following:g}%",
        weights=split(state, following),
        step=index + 1,
    )


def _blue_green(
    state: RolloutState, policy: BlueGreenRollout, champion: VersionStats, challenger: VersionStats
) -> Decision:
    new, old = state.challenger, state.champion
    bake = policy.min_seconds_per_step if policy.bake_seconds is None else policy.bake_seconds
    if state.step == 0:
        step = Step(state, f"blue-green warm-up of v{new}", champion, challenger)
        count = policy.synthetic_requests
        if count and state.synthetic_ok is None:
            return step.decision("hold", f": waiting for the {count} synthetic requests to v{new}")
        if count and not state.synthetic_ok:
            return step.failed([("synthetic", f"v{new} failed its {count} synthetic requests")])
        checked = f"v{new} answered {count} synthetic requests" if count else "no synthetic checks"
        return step.decision(
            "advance",
            f": {checked} → switching all traffic to v{new}; v{old} stays warm for {bake:g} s",
            weights=all_to(new, state),
            step=1,
        )
    step = Step(state, f"blue-green bake of v{new} (100%)", champion, challenger)
    decision = step.breach() or step.wait(bake)
    if decision is not None:
        return decision
    return step.decision(
        "promote",
        f" {step.held}: {step.summary} → promoting v{new}; v{old} may be unloaded",
        weights=all_to(new, state),
    )
