"""Quality gates: may this model replace the champion?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conveyor.spec import ChampionComparison, Direction, GateSpec
from conveyor.train.evaluation._results import Evaluation, MetricValue, format_number

__all__ = ["GateCheck", "GateResult", "check_gates"]

NO_CHAMPION = "no champion yet: this model becomes the first"


@dataclass(frozen=True)
class GateCheck:
    """One rule of the gate and its outcome.

    Attributes:
        name: ``"min.<metric>"``, ``"max.<metric>"`` or ``"vs_champion.<metric>"``.
        passed: whether the model satisfies the rule.
        detail: one sentence with the numbers behind the outcome.
    """

    name: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class GateResult:
    """Every check of a gate; the model passes when all of them pass."""

    passed: bool
    checks: list[GateCheck]

    @property
    def failed(self) -> list[GateCheck]:
        """The checks that did not pass."""
        return [check for check in self.checks if not check.passed]

    def summary(self) -> str:
        """One line: the verdict and, if failed, each failed check with its numbers."""
        if self.passed:
            return f"passed all {len(self.checks)} gate checks"
        return f"failed {len(self.failed)} of {len(self.checks)} gate checks: " + "; ".join(
            f"{check.name}: {check.detail}" for check in self.failed
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"passed": self.passed, "checks": [check.to_json() for check in self.checks]}


def check_gates(
    gate: GateSpec,
    challenger: Evaluation,
    champion: Evaluation | None = None,
    *,
    paired: MetricValue | None = None,
) -> GateResult:
    """Check a challenger's evaluation against the gate.

    ``min``/``max`` bounds apply to the point estimates. ``vs_champion`` fails when the
    challenger is worse than the champion by more than ``max_regression`` (lower for a
    ``maximize`` metric, higher for a ``minimize`` one). The caller must evaluate both models
    on the SAME current holdout: a champion's evaluation from its own training time measured
    other data and is not comparable (different row counts fail the check).

    Args:
        gate: the spec's gate.
        challenger: the new model's evaluation.
        champion: the current champion's evaluation on the same holdout, or None when there is
            no champion yet (the comparison then passes).
        paired: the result of :func:`compare_paired` for the gate's ``vs_champion`` metric
            (at its ``confidence``); its interval is added to the detail. It informs, the
            point estimates decide.

    Raises:
        ValueError: ``paired`` is for another metric than the gate compares.
    """
    checks: list[GateCheck] = []
    for bound, limits in (("min", gate.min), ("max", gate.max)):
        for name, limit in limits.items():
            checks.append(_bound_check(bound, name, limit, challenger))
    if gate.vs_champion is not None:
        checks.append(_champion_check(gate.vs_champion, challenger, champion, paired))
    return GateResult(all(check.passed for check in checks), checks)


def _missing(name: str, evaluation: Evaluation, whose: str) -> str:
    reason = f" ({evaluation.skipped[name]})" if name in evaluation.skipped else ""
    available = ", ".join(evaluation.metrics) or "none"
    return f"{name} is not in the {whose} evaluation{reason}; available: {available}"


def _bound_check(bound: str, name: str, limit: float, evaluation: Evaluation) -> GateCheck:
    check = f"{bound}.{name}"
    if name not in evaluation.metrics:
        return GateCheck(check, False, _missing(name, evaluation, "model's"))
    value = evaluation.metrics[name]
    if bound == "min":
        passed = value.value >= limit
        verdict = "meets" if passed else "is below"
        detail = f"{value.describe()} {verdict} the minimum {limit:g}"
    else:
        passed = value.value <= limit
        verdict = "is within" if passed else "is above"
        detail = f"{value.describe()} {verdict} the maximum {limit:g}"
    return GateCheck(check, passed, detail)


def _champion_check(
    rule: ChampionComparison,
    challenger: Evaluation,
    champion: Evaluation | None,
    paired: MetricValue | None,
) -> GateCheck:
    name = rule.metric
    check = f"vs_champion.{name}"
    if paired is not None and paired.name != name:
        raise ValueError(f"paired= compares {paired.name!r} but the gate compares {name!r}")
    if name not in challenger.metrics:
        return GateCheck(check, False, _missing(name, challenger, "challenger's"))
    if champion is None:
        return GateCheck(check, True, NO_CHAMPION)
    if name not in champion.metrics:
        return GateCheck(check, False, _missing(name, champion, "champion's"))
    if champion.rows != challenger.rows:
        return GateCheck(
            check,
            False,
            f"challenger and champion were evaluated on different holdouts "
            f"({challenger.rows} vs {champion.rows} rows); evaluate the champion on the "
            "current holdout",
        )
    new, old = challenger.metrics[name], champion.metrics[name]
    change = new.value - old.value
    worsening = -change if new.direction is Direction.maximize else change
    passed = worsening <= rule.max_regression
    verdict = "within" if passed else "beyond"
    detail = (
        f"{new.describe()} vs champion {format_number(old.value)}: change {change:+.3f} is "
        f"{verdict} the allowed regression {rule.max_regression:g}"
    )
    if paired is not None and paired.samples:
        detail += (
            f"; paired difference {paired.value:+.3f} "
            f"[{paired.low:+.3f}, {paired.high:+.3f}] "
            f"({paired.confidence:.0%} CI, {paired.samples} resamples)"
        )
    return GateCheck(check, passed, detail)
