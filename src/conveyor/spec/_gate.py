"""``gate:`` — what a trained model must achieve before it may replace the champion."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from conveyor.spec._base import RelPath, SpecModel
from conveyor.spec._metrics import TASK_METRICS, Direction, Task, check_metric

__all__ = ["ChampionComparison", "GateSpec", "gate_problems"]


class ChampionComparison(SpecModel):
    """The challenger must not be worse than the current champion beyond a margin."""

    metric: str = Field(description="Metric compared on the same test data.")
    max_regression: float = Field(
        0.0, ge=0, description="Largest allowed worsening of the metric (absolute)."
    )
    confidence: float = Field(
        0.95,
        gt=0,
        lt=1,
        description="Confidence level of the bootstrap interval of the difference.",
    )


class GateSpec(SpecModel):
    """Quality gates a trained model must pass before it is registered as a challenger."""

    min: dict[str, float] = Field(
        default_factory=dict, description="Lower bounds of higher-is-better metrics."
    )
    max: dict[str, float] = Field(
        default_factory=dict, description="Upper bounds of lower-is-better metrics."
    )
    vs_champion: ChampionComparison | None = Field(
        None, description="Comparison with the current champion (skipped when there is none)."
    )


def gate_problems(gate: GateSpec, task: Task) -> list[tuple[RelPath, str]]:
    """Problems of ``gate`` for a model of ``task`` (unknown metrics, bounds on the wrong side)."""
    problems: list[tuple[RelPath, str]] = []
    metrics: Mapping[str, Direction] = TASK_METRICS[task]
    for bound, wrong in (("min", Direction.minimize), ("max", Direction.maximize)):
        for name in getattr(gate, bound):
            problem = check_metric(name, task)
            if problem:
                problems.append(((bound, name), problem))
            elif metrics[name] is wrong:
                better = "lower" if wrong is Direction.minimize else "higher"
                other = "max" if bound == "min" else "min"
                problems.append(
                    ((bound, name), f"{name} is better when {better}; put it under {other}:")
                )
    if gate.vs_champion is not None:
        problem = check_metric(gate.vs_champion.metric, task)
        if problem:
            problems.append((("vs_champion", "metric"), problem))
    return problems
