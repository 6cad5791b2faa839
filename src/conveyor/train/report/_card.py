"""What a model card shows, worked out once for both renderers (HTML and Markdown)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from conveyor.spec import Direction, Task
from conveyor.train.evaluation import Evaluation, GateCheck, GateResult, MetricValue
from conveyor.train.evaluation._results import format_number

__all__ = [
    "DEFAULT_INTENDED_USE",
    "LIMITATIONS_PROMPT",
    "PLOT_TITLES",
    "SLICE_TOLERANCE",
    "CardInputs",
    "ChampionRow",
    "SliceRow",
    "champion_check",
    "champion_rows",
    "feature_rows",
    "format_value",
    "gate_verdict",
    "intended_use",
    "much_worse",
    "ordered_plots",
    "param_rows",
    "plot_title",
    "skipped_metrics",
    "skipped_slices",
    "slice_rows",
    "title",
    "tuning_summary",
]

DEFAULT_INTENDED_USE: Final = (
    "No intended use was written for this model. It predicts the target from the features "
    "below and was checked only on the holdout described in this card."
)
LIMITATIONS_PROMPT: Final = (
    "Limitations to state: who may rely on the predictions and for which decisions, the "
    "populations, time ranges and inputs the training data does not cover, and the slices "
    "where the model is weaker (see the per-slice metrics)."
)

SLICE_TOLERANCE: Final = 0.05
"""A slice is flagged when it is worse than the whole holdout by more than this share of
the overall value and its interval lies wholly on the worse side of the overall value."""

PLOT_TITLES: Final[Mapping[str, str]] = {
    "confusion_matrix.png": "Confusion matrix",
    "roc_curve.png": "ROC curve",
    "pr_curve.png": "Precision-recall curve",
    "calibration.png": "Calibration",
    "residuals.png": "Residuals",
    "predicted_vs_actual.png": "Predicted vs actual",
}

_TUNED_PARAMS: Final = ("best_params", "params")


@dataclass(frozen=True)
class CardInputs:
    """Everything a model card shows; build it after evaluation and gating.

    Attributes:
        project: the project name.
        model_name: the model's name in the project.
        version: the registry version, or None before registration.
        algorithm: the spec's ``algorithm`` string.
        task: the learning task.
        target: the target column.
        features: feature column -> kind.
        params: the parameters the spec fixed.
        tuned: the tuning summary (``best_params``, trials, metric, best value) or None.
        evaluation: the metrics on the test set, with intervals and slices.
        gate: the quality gate's outcome, or None when no gate ran.
        champion: ``{"version": 3, "metrics": {name: value}}`` of the champion measured on the
            same holdout (values as floats, :class:`MetricValue` or their JSON), or None.
        data: dataset facts: version id, rows per split part, time range, class balance.
        lineage: label -> id or URI (sources, dataset versions, pipeline run, MLflow run,
            spec digest).
        intended_use: free text from the spec; empty shows a default and a prompt.
        importance: feature -> share, from :func:`feature_importance`, or None.
        plots: file name -> PNG bytes, from :func:`evaluation_plots`.
        created_at: when the card was made.
    """

    project: str
    model_name: str
    version: int | None
    algorithm: str
    task: Task
    target: str
    features: Mapping[str, str]
    params: Mapping[str, Any]
    tuned: Mapping[str, Any] | None
    evaluation: Evaluation
    gate: GateResult | None
    champion: Mapping[str, Any] | None
    data: Mapping[str, Any]
    lineage: Mapping[str, str]
    intended_use: str
    importance: Mapping[str, float] | None
    plots: Mapping[str, bytes]
    created_at: datetime


def title(card: CardInputs) -> str:
    """``"flights / delay v3"`` (``unregistered`` without a version)."""
    version = "unregistered" if card.version is None else f"v{card.version}"
    return f"{card.project} / {card.model_name} {version}"


def format_value(value: Any, *, exact: bool = False) -> str:
    """Plain text for a fact of the card (the renderer escapes it).

    Floats show three decimals (as metrics do) or, with ``exact``, every digit (parameters).
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return repr(value) if exact else format_number(value)
    if isinstance(value, datetime | date):
        return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)
    if isinstance(value, MetricValue):
        return value.describe()
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {format_value(v, exact=exact)}" for k, v in value.items())
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return ", ".join(format_value(item, exact=exact) for item in value)
    return str(value)


def gate_verdict(card: CardInputs) -> tuple[str, str]:
    """``(verdict, sentence)``: ``"passed"``, ``"failed"`` or ``"not gated"``."""
    if card.gate is None:
        return "not gated", "No quality gate was checked for this model."
    return ("passed" if card.gate.passed else "failed"), card.gate.summary()


def intended_use(card: CardInputs) -> tuple[str, bool]:
    """``(text, written)``: the spec's text, or the default sentence when it is empty."""
    text = card.intended_use.strip()
    return (text, True) if text else (DEFAULT_INTENDED_USE, False)


# -- metrics and the champion ----------------------------------------------------------------


@dataclass(frozen=True)
class ChampionRow:
    """One metric of the model next to the champion's on the same holdout."""

    name: str
    value: float
    champion: float
    direction: Direction

    @property
    def change(self) -> float:
        """This model minus the champion."""
        return self.value - self.champion

    @property
    def better(self) -> bool | None:
        """Whether this model is better (None when equal or undefined)."""
        if not math.isfinite(self.change) or self.change == 0:
            return None
        return (self.change > 0) == (self.direction is Direction.maximize)


def _number(value: Any) -> float | None:
    if isinstance(value, MetricValue):
        return value.value
    if isinstance(value, Mapping):
        value = value.get("value")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def champion_rows(card: CardInputs) -> list[ChampionRow]:
    """The metrics both this model and the champion have, in the evaluation's order."""
    if card.champion is None:
        return []
    theirs = card.champion.get("metrics") or {}
    rows = []
    for name, mine in card.evaluation.metrics.items():
        value = _number(theirs.get(name))
        if value is not None:
            rows.append(ChampionRow(name, mine.value, value, mine.direction))
    return rows


def champion_check(card: CardInputs) -> GateCheck | None:
    """The gate's ``vs_champion`` check, if it has one."""
    if card.gate is None:
        return None
    return next((c for c in card.gate.checks if c.name.startswith("vs_champion.")), None)


# -- slices ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SliceRow:
    """One slice value with its metrics; ``flagged`` names those much worse than overall."""

    column: str
    value: str
    rows: int
    metrics: Mapping[str, MetricValue]
    flagged: frozenset[str]


def much_worse(part: MetricValue, overall: MetricValue) -> bool:
    """Whether a slice's metric is clearly worse than the whole holdout's (see SLICE_TOLERANCE)."""
    sign = 1.0 if overall.direction is Direction.maximize else -1.0
    worsening = sign * (overall.value - part.value)
    if not math.isfinite(worsening) or worsening <= SLICE_TOLERANCE * abs(overall.value):
        return False
    if part.samples:
        bound = part.high if overall.direction is Direction.maximize else part.low
        return sign * (overall.value - bound) > 0
    return True


def slice_rows(card: CardInputs) -> tuple[list[str], list[SliceRow]]:
    """``(metric names, rows)`` of the per-slice table, in the evaluation's metric order."""
    overall = card.evaluation.metrics
    rows: list[SliceRow] = []
    shown: set[str] = set()
    for column, values in card.evaluation.slices.items():
        for key, entries in values.items():
            metrics = {n: e for n, e in entries.items() if isinstance(e, MetricValue)}
            shown.update(metrics)
            flagged = frozenset(
                name
                for name, value in metrics.items()
                if name in overall and much_worse(value, overall[name])
            )
            size = entries.get("rows", 0)
            rows.append(
                SliceRow(column, key, size if isinstance(size, int) else 0, metrics, flagged)
            )
    names = [name for name in overall if name in shown]
    names += sorted(shown - set(names))
    return names, rows


def skipped_slices(card: CardInputs) -> dict[str, str]:
    """Slices left out of the table and why (too few rows)."""
    return {k: v for k, v in card.evaluation.skipped.items() if k.startswith("slice ")}


def skipped_metrics(card: CardInputs) -> dict[str, str]:
    """Overall metrics that could not be computed and why."""
    return {k: v for k, v in card.evaluation.skipped.items() if not k.startswith("slice ")}


# -- features, parameters, plots -------------------------------------------------------------


def feature_rows(card: CardInputs) -> list[tuple[str, str, float | None]]:
    """``(feature, kind, share)``: by importance (largest first), then in spec order."""
    importance = card.importance or {}
    names = list(card.features) + [name for name in importance if name not in card.features]
    order = {name: position for position, name in enumerate(names)}
    names.sort(key=lambda name: (-importance.get(name, -1.0), order[name]))
    return [(name, card.features.get(name, ""), importance.get(name)) for name in names]


def _tuned_params(card: CardInputs) -> Mapping[str, Any]:
    for key in _TUNED_PARAMS:
        found = (card.tuned or {}).get(key)
        if isinstance(found, Mapping):
            return found
    return {}


def param_rows(card: CardInputs) -> list[tuple[str, Any, str]]:
    """``(name, value, "spec" | "tuned")``: the spec's parameters, then tuned ones override."""
    tuned = _tuned_params(card)
    rows = [(name, value, "spec") for name, value in card.params.items() if name not in tuned]
    rows += [(name, value, "tuned") for name, value in tuned.items()]
    return rows


def tuning_summary(card: CardInputs) -> list[tuple[str, Any]]:
    """The tuning facts other than the parameters (trials, metric, best value...)."""
    if card.tuned is None:
        return []
    return [(key, value) for key, value in card.tuned.items() if key not in _TUNED_PARAMS]


def plot_title(name: str) -> str:
    """A caption for a plot file: known names get their title, others their stem."""
    known = PLOT_TITLES.get(name)
    if known is not None:
        return known
    stem = name.rsplit(".", 1)[0]
    return stem.replace("_", " ").capitalize()


def ordered_plots(card: CardInputs) -> list[tuple[str, bytes]]:
    """The plots, known ones in a fixed order, then the others by name."""
    known = [(name, card.plots[name]) for name in PLOT_TITLES if name in card.plots]
    others = sorted((n, b) for n, b in card.plots.items() if n not in PLOT_TITLES)
    return known + others
