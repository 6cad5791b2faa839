"""What live quality produces: one point per model version (and time window), and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conveyor.spec import Direction, Task

__all__ = ["QualityPoint", "QualityReport"]


@dataclass(frozen=True)
class QualityPoint:
    """The metric on one model version's predictions, overall or in one time window.

    Attributes:
        model_version: The version that made the predictions.
        shadow: Whether they are a shadow version's (never returned to callers).
        window_start: Start of the window (UTC), or None for all predictions.
        window_end: Its end (exclusive), or None.
        n_predictions: Logged prediction rows.
        n_labelled: Those with a label.
        coverage: ``n_labelled / n_predictions``.
        value: The metric on the labelled rows, or None (see ``reason``).
        ci_low: Lower bound of the bootstrap percentile interval, or None.
        ci_high: Upper bound, or None.
        reason: Why there is no value (or no interval), else None.
    """

    model_version: int
    shadow: bool
    window_start: datetime | None
    window_end: datetime | None
    n_predictions: int
    n_labelled: int
    coverage: float
    value: float | None
    ci_low: float | None
    ci_high: float | None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "model_version": self.model_version,
            "shadow": self.shadow,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "n_predictions": self.n_predictions,
            "n_labelled": self.n_labelled,
            "coverage": self.coverage,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QualityPoint:
        """The inverse of :meth:`to_json`."""
        return cls(
            model_version=int(data["model_version"]),
            shadow=bool(data["shadow"]),
            window_start=_time(data.get("window_start")),
            window_end=_time(data.get("window_end")),
            n_predictions=int(data["n_predictions"]),
            n_labelled=int(data["n_labelled"]),
            coverage=float(data["coverage"]),
            value=_maybe(data.get("value")),
            ci_low=_maybe(data.get("ci_low")),
            ci_high=_maybe(data.get("ci_high")),
            reason=data.get("reason"),
        )


@dataclass(frozen=True)
class QualityReport:
    """Live quality of every model version in the joined predictions.

    Attributes:
        created_at: When it was computed (UTC).
        task: The learning task.
        metric: The metric measured.
        direction: Whether higher or lower values are better.
        confidence: Coverage of the intervals.
        min_labels: Labelled rows below which a cell has no value.
        window: Length of the time windows, or None (overall only).
        versions: One overall point per (version, shadow), served versions first.
        windows: One point per (version, shadow, window), oldest first.
    """

    created_at: datetime
    task: Task
    metric: str
    direction: Direction
    confidence: float
    min_labels: int
    window: timedelta | None
    versions: tuple[QualityPoint, ...]
    windows: tuple[QualityPoint, ...] = field(default=())

    def version(self, model_version: int, *, shadow: bool = False) -> QualityPoint | None:
        """The overall point of ``model_version`` (its shadow predictions with ``shadow``)."""
        for point in self.versions:
            if point.model_version == model_version and point.shadow == shadow:
                return point
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_json` reads it back."""
        return {
            "kind": "quality",
            "created_at": _iso(self.created_at),
            "task": str(self.task),
            "metric": self.metric,
            "direction": str(self.direction),
            "confidence": self.confidence,
            "min_labels": self.min_labels,
            "window_seconds": None if self.window is None else self.window.total_seconds(),
            "versions": [p.to_json() for p in self.versions],
            "windows": [p.to_json() for p in self.windows],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QualityReport:
        """Read what :meth:`to_json` wrote."""
        seconds = data.get("window_seconds")
        created = _time(data["created_at"])
        if created is None:
            raise ValueError("a quality report needs created_at")
        return cls(
            created_at=created,
            task=Task(data["task"]),
            metric=str(data["metric"]),
            direction=Direction(data["direction"]),
            confidence=float(data["confidence"]),
            min_labels=int(data["min_labels"]),
            window=None if seconds is None else timedelta(seconds=float(seconds)),
            versions=tuple(QualityPoint.from_json(p) for p in data["versions"]),
            windows=tuple(QualityPoint.from_json(p) for p in data.get("windows", [])),
        )

    def render_html(self, path: Path) -> Path:
        """Write the report as one self-contained HTML page (plot embedded) and return ``path``."""
        from conveyor.monitor._quality_html import render_quality_html

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_quality_html(self), encoding="utf-8")
        return path


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def _maybe(value: Any) -> float | None:
    return None if value is None else float(value)
