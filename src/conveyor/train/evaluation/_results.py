"""What an evaluation produces: metric values with intervals, overall and per slice."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from conveyor.spec import Direction, Task

__all__ = ["Evaluation", "MetricValue", "format_number"]


def format_number(value: float) -> str:
    """A metric value for messages: three decimals, or three significant digits if tiny/huge."""
    if math.isnan(value):
        return "nan"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return f"{value:.3f}"
    return f"{value:.3g}"


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def _from_json_float(value: float | None) -> float:
    return float("nan") if value is None else float(value)


@dataclass(frozen=True)
class MetricValue:
    """A metric on a holdout with its bootstrap percentile interval.

    Attributes:
        name: metric name (see ``conveyor.spec.TASK_METRICS``).
        value: the metric on the whole holdout (for :func:`compare_paired`: the difference
            challenger - champion).
        low: lower bound of the interval (NaN when no resample allowed the metric).
        high: upper bound of the interval.
        direction: whether higher or lower is better.
        samples: resamples on which the metric was defined; fewer than requested when some
            resamples held one class only.
        confidence: coverage of the interval.
    """

    name: str
    value: float
    low: float
    high: float
    direction: Direction
    samples: int = 0
    confidence: float = 0.95

    def describe(self) -> str:
        """``"roc_auc 0.684 [0.671, 0.697]"``."""
        text = f"{self.name} {format_number(self.value)}"
        if self.samples:
            text += f" [{format_number(self.low)}, {format_number(self.high)}]"
        return text

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes null)."""
        return {
            "name": self.name,
            "value": _json_float(self.value),
            "low": _json_float(self.low),
            "high": _json_float(self.high),
            "direction": str(self.direction),
            "samples": self.samples,
            "confidence": self.confidence,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MetricValue:
        """The inverse of :meth:`to_json`."""
        return cls(
            name=data["name"],
            value=_from_json_float(data["value"]),
            low=_from_json_float(data["low"]),
            high=_from_json_float(data["high"]),
            direction=Direction(data["direction"]),
            samples=int(data["samples"]),
            confidence=float(data["confidence"]),
        )


SliceMetrics = dict[str, MetricValue | int]


@dataclass(frozen=True)
class Evaluation:
    """A model's metrics on one holdout.

    Attributes:
        task: the learning task.
        rows: rows of the holdout.
        metrics: metric name -> value with interval.
        slices: slice column -> slice value (as text) -> ``{"rows": n, metric: value, ...}``,
            for the slice values with enough rows.
        skipped: what was not computed and why (metric name, or ``"slice column=value"``).
    """

    task: Task
    rows: int
    metrics: dict[str, MetricValue]
    slices: dict[str, dict[str, SliceMetrics]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def metric(self, name: str) -> MetricValue:
        """The metric called ``name``.

        Raises:
            KeyError: the evaluation has no such metric; the message lists those it has.
        """
        try:
            return self.metrics[name]
        except KeyError:
            reason = f" ({self.skipped[name]})" if name in self.skipped else ""
            raise KeyError(
                f"no metric {name!r} in this evaluation{reason}; it has: "
                + (", ".join(self.metrics) or "none")
            ) from None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes null); :meth:`from_json` reads it back."""
        return {
            "task": str(self.task),
            "rows": self.rows,
            "metrics": {name: value.to_json() for name, value in self.metrics.items()},
            "slices": {
                column: {
                    key: {
                        name: entry if isinstance(entry, int) else entry.to_json()
                        for name, entry in entries.items()
                    }
                    for key, entries in values.items()
                }
                for column, values in self.slices.items()
            },
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evaluation:
        """Read what :meth:`to_json` wrote (for example a champion's stored evaluation)."""
        return cls(
            task=Task(data["task"]),
            rows=int(data["rows"]),
            metrics={name: MetricValue.from_json(value) for name, value in data["metrics"].items()},
            slices={
                column: {
                    key: {
                        name: int(entry) if name == "rows" else MetricValue.from_json(entry)
                        for name, entry in entries.items()
                    }
                    for key, entries in values.items()
                }
                for column, values in data.get("slices", {}).items()
            },
            skipped=dict(data.get("skipped", {})),
        )
