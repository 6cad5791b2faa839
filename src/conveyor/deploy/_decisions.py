"""Building blocks shared by the policies: metrics, guardrail verdicts, step minimums, weights."""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.deploy._guardrails import GuardrailCheck, VersionStats, check_guardrails
from conveyor.deploy._state import Action, Decision, RolloutState

__all__ = ["Step", "all_to", "split"]


def split(state: RolloutState, percent: float) -> dict[int, float]:
    """Weights giving the challenger ``percent`` and the champion the rest."""
    return {state.champion: 100.0 - percent, state.challenger: float(percent)}


def all_to(version: int, state: RolloutState) -> dict[int, float]:
    """Weights sending all traffic to ``version`` (the other stays loaded at 0 %)."""
    return {state.champion: 0.0, state.challenger: 0.0, version: 100.0}


class Step:
    """One evaluation of the current step: guardrails judged, metrics gathered.

    Args:
        state: The rollout.
        where: How the reason names the step ("canary step 2/4 (25%)").
        champion: The champion's aggregates over the step.
        challenger: The challenger's aggregates over the step.
    """

    def __init__(
        self, state: RolloutState, where: str, champion: VersionStats, challenger: VersionStats
    ) -> None:
        self.state = state
        self.where = where
        self.champion = champion
        self.challenger = challenger
        self.checks: Sequence[GuardrailCheck] = check_guardrails(
            state.policy.guardrails,
            champion,
            challenger,
            quality_higher_is_better=state.quality_higher_is_better,
        )
        self.metrics = self._metrics()

    def _metrics(self) -> dict[str, float]:
        metrics = {"elapsed_s": self.state.elapsed_seconds, "step": float(self.state.step)}
        for role, stats in (("champion", self.champion), ("challenger", self.challenger)):
            metrics[f"{role}_requests"] = float(stats.requests)
            metrics[f"{role}_errors"] = float(stats.errors)
            optional = {
                "error_rate": stats.error_rate,
                "p95_ms": stats.p95_ms,
                "p99_ms": stats.p99_ms,
                "quality": stats.quality,
            }
            metrics.update({f"{role}_{k}": v for k, v in optional.items() if v is not None})
        for check in self.checks:
            metrics[f"{check.name}_limit"] = check.limit
            if check.value is not None:
                metrics[check.name] = check.value
        return metrics

    @property
    def summary(self) -> str:
        """The guardrails against their limits, comma-separated."""
        return ", ".join(check.text for check in self.checks) or "no guardrails set"

    def decision(
        self,
        action: Action,
        reason: str,
        *,
        weights: dict[int, float] | None = None,
        step: int | None = None,
        guardrail: str | None = None,
    ) -> Decision:
        """A decision with this step's metrics; weights and step default to the current ones."""
        return Decision(
            action,
            dict(self.state.weights) if weights is None else weights,
            self.state.step if step is None else step,
            f"{self.where}{reason}",
            {name: float(value) for name, value in self.metrics.items()},
            guardrail,
        )

    def breach(self) -> Decision | None:
        """Roll back (or, without auto_rollback, hold) if a guardrail is breached, else None."""
        breached = [(check.name, check.text) for check in self.checks if check.breached]
        return self.failed(breached) if breached else None

    def failed(self, breached: Sequence[tuple[str, str]]) -> Decision:
        """Roll back, or hold when auto_rollback is off, for ``(guardrail, text)`` breaches."""
        names = ", ".join(name for name, _ in breached)
        texts = ", ".join(text for _, text in breached)
        head = f": guardrail {names} breached: {texts}"
        champion = self.state.champion
        if self.state.policy.auto_rollback:
            return self.decision(
                "rollback",
                f"{head} → rolling back to v{champion}",
                weights=all_to(champion, self.state),
                guardrail=breached[0][0],
            )
        return self.decision(
            "hold",
            f"{head} → holding, as auto_rollback is off: roll back or promote by hand",
            guardrail=breached[0][0],
        )

    def missing(self, min_seconds: float) -> str | None:
        """What the step still lacks before it may end, or None when it has held long enough.

        A step needs ``min_requests_per_step`` challenger requests, and never fewer than
        ``guardrails.min_requests``, so error rate and latency are always judged before it ends.
        """
        needed = max(
            self.state.policy.min_requests_per_step, self.state.policy.guardrails.min_requests
        )
        requests, elapsed = self.challenger.requests, self.state.elapsed_seconds
        lacking = []
        if requests < needed:
            lacking.append(f"{requests:,}/{needed:,} requests")
        if elapsed < min_seconds:
            lacking.append(f"{elapsed:.0f}/{min_seconds:g} s")
        return " and ".join(lacking) if lacking else None

    def wait(self, min_seconds: float) -> Decision | None:
        """Hold while the step lacks requests or time (see :meth:`missing`)."""
        lacking = self.missing(min_seconds)
        if lacking is None:
            return None
        return self.decision("hold", f": waiting for {lacking}; {self.summary}")

    @property
    def held(self) -> str:
        """'held 61 s and 812 requests'."""
        return f"held {self.state.elapsed_seconds:.0f} s and {self.challenger.requests:,} requests"
