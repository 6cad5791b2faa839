"""``monitor:`` — drift and live quality, alerts, and when to retrain."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final, Literal, Self

from pydantic import Field, field_validator, model_validator

from conveyor.spec._base import Duration, SpecModel, did_you_mean, problem_error

__all__ = [
    "DEFAULT_DRIFT_THRESHOLDS",
    "AlertEvent",
    "AlertSpec",
    "DriftMethod",
    "DriftMethods",
    "DriftSpec",
    "MonitorSpec",
    "QualitySpec",
    "RetrainSpec",
    "RetrainTrigger",
]


class DriftMethod(StrEnum):
    """A statistic comparing a live window with the training data."""

    psi = "psi"
    ks = "ks"
    chi_square = "chi_square"
    jensen_shannon = "jensen_shannon"
    wasserstein = "wasserstein"


DEFAULT_DRIFT_THRESHOLDS: Final = MappingProxyType(
    {
        DriftMethod.psi: 0.2,
        DriftMethod.ks: 0.1,
        DriftMethod.chi_square: 0.1,
        DriftMethod.jensen_shannon: 0.1,
        DriftMethod.wasserstein: 0.1,
    }
)
"""Statistic values above which a column counts as drifted, unless the spec says otherwise.

What each value is: ``psi`` the population stability index on the reference's quantile bins
(categories for categorical columns); ``ks`` the Kolmogorov-Smirnov statistic; ``chi_square``
Cramér's V of the chi-square test (an effect size in [0, 1], not the statistic itself, which
grows with the sample); ``jensen_shannon`` the Jensen-Shannon distance (base 2, in [0, 1]);
``wasserstein`` the Wasserstein-1 distance divided by the reference's standard deviation.
"""


class DriftMethods(SpecModel):
    """Which statistic is used for each kind of column."""

    numeric: Literal["psi", "ks", "jensen_shannon", "wasserstein"] = Field(
        "psi", description="Statistic for numeric columns."
    )
    categorical: Literal["psi", "chi_square", "jensen_shannon"] = Field(
        "jensen_shannon", description="Statistic for categorical columns."
    )


class DriftSpec(SpecModel):
    """Data drift of features and predictions, computed per window of predictions."""

    window: int = Field(10_000, ge=1, description="Predictions per monitoring window.")
    columns: list[str] | None = Field(
        None, description="Columns to watch (default: every feature and the prediction)."
    )
    methods: DriftMethods = Field(
        default_factory=DriftMethods, description="Statistic per column kind."
    )
    thresholds: dict[DriftMethod, float] = Field(
        default_factory=lambda: dict(DEFAULT_DRIFT_THRESHOLDS),
        description="Statistic value above which a column counts as drifted; methods left out "
        "keep their defaults (psi 0.2, ks 0.1, chi_square 0.1, jensen_shannon 0.1, "
        "wasserstein 0.1).",
    )
    column_thresholds: dict[str, dict[DriftMethod, float]] = Field(
        default_factory=dict,
        description="Thresholds for single columns, e.g. {age: {psi: 0.3}}; they override "
        "'thresholds' for that column and method.",
    )
    dataset_share: float = Field(
        0.3,
        gt=0,
        le=1,
        description="Share of drifted columns (weighted by feature importance when known) at "
        "or above which the whole window counts as drifted.",
    )
    bins: int = Field(
        10, ge=2, le=1000, description="Quantile bins of the reference for PSI (numeric columns)."
    )
    max_rows: int | None = Field(
        1_000_000,
        ge=1,
        description="Rows drawn at random (seeded) from the reference and from the window when "
        "either has more; null compares every row.",
    )
    seed: int = Field(0, description="Seed of that sample, so a report can be reproduced.")

    @field_validator("thresholds")
    @classmethod
    def _with_defaults(cls, value: dict[DriftMethod, float]) -> dict[DriftMethod, float]:
        _check_positive(value, ())
        return {**DEFAULT_DRIFT_THRESHOLDS, **value}

    @field_validator("column_thresholds")
    @classmethod
    def _positive(
        cls, value: dict[str, dict[DriftMethod, float]]
    ) -> dict[str, dict[DriftMethod, float]]:
        for column, thresholds in value.items():
            _check_positive(thresholds, (column,))
        return value

    @model_validator(mode="after")
    def _thresholds_of_watched_columns(self) -> Self:
        if self.columns is not None:
            for column in self.column_thresholds:
                if column not in self.columns:
                    raise problem_error(
                        f"column {column!r} is not among the watched columns "
                        f"({', '.join(self.columns)}){did_you_mean(column, self.columns)}",
                        ("column_thresholds", column),
                    )
        return self

    def threshold(self, column: str, method: DriftMethod | str) -> float:
        """The threshold of ``method`` for ``column``: its own one, else the method's."""
        key = DriftMethod(method)
        return self.column_thresholds.get(column, {}).get(key, self.thresholds[key])


def _check_positive(thresholds: dict[DriftMethod, float], path: tuple[str, ...]) -> None:
    for method, threshold in thresholds.items():
        if threshold <= 0:
            raise problem_error(f"expected a number above 0, found {threshold:g}", (*path, method))


class QualitySpec(SpecModel):
    """Live model quality, computed when ground-truth labels arrive."""

    metric: str | None = Field(
        None, description="Metric to watch (default: the task's primary metric)."
    )
    label_delay: Duration = Field(
        timedelta(days=1), description="How long labels take to arrive (e.g. '1d')."
    )
    key: str | None = Field(
        None,
        min_length=1,
        description="A feature to join labels by (e.g. 'flight_id', matched with the "
        "prediction log's in_<key>) instead of the request id (X-Request-ID).",
    )
    window: Duration = Field(
        timedelta(hours=1), description="Time window of the per-window report (e.g. '1h')."
    )
    min_labels: int = Field(
        100, ge=1, description="Labelled predictions below which the metric is reported as n/a."
    )
    max_drop: float = Field(
        0.05,
        gt=0,
        description="Drop of the live metric below the champion's holdout value at which a "
        "quality run is flagged (what `monitor.retrain.on: [quality_drop]` counts).",
    )

    @field_validator("window")
    @classmethod
    def _positive_window(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise problem_error("expected a duration above 0 (e.g. '1h')")
        return value


class AlertEvent(StrEnum):
    """Events an alert can be sent for."""

    drift = "drift"
    quality_drop = "quality_drop"
    rollback = "rollback"
    retrain = "retrain"
    run_failed = "run_failed"
    error_rate = "error_rate"
    latency = "latency"


_THRESHOLD_REQUIRED: Final = MappingProxyType(
    {
        AlertEvent.quality_drop: "the drop of the live metric below the champion's holdout "
        "value that fires, e.g. 0.03",
        AlertEvent.error_rate: "the share of failed requests that fires, e.g. 0.05",
        AlertEvent.latency: "the p99 latency in milliseconds that fires, e.g. 250",
    }
)


class AlertSpec(SpecModel):
    """A webhook called (JSON POST, Slack-compatible) when an event happens.

    Monitoring events (drift, quality_drop, error_rate, latency) are conditions: the alert is
    sent when one starts to hold, again every ``renotify_after`` while it holds, and once more
    (``send_resolved``) when it clears. Every firing is also recorded in the metadata store.
    """

    on: AlertEvent = Field(description="Event that sends the alert.")
    webhook: str = Field(
        description="http(s) URL that receives the alert; use ${VAR} so it is not stored."
    )
    threshold: float | None = Field(
        None,
        gt=0,
        description="When the alert fires. drift: share of drifted columns (default: the "
        "drift report's own verdict, monitor.drift.dataset_share); quality_drop: drop of the "
        "live metric below the champion's holdout value (required); error_rate: share of "
        "failed requests (required); latency: p99 latency in ms (required).",
    )
    renotify_after: Duration | None = Field(
        timedelta(hours=1),
        description="A firing alert is sent again at most this often (e.g. '1h'); null: once "
        "until it resolves.",
    )
    send_resolved: bool = Field(True, description="Also send a message when the condition clears.")
    clear_after: int = Field(
        2,
        ge=1,
        description="drift: consecutive windows without drift before a firing alert resolves, "
        "so a verdict that wavers around its threshold does not send firing/resolved pairs.",
    )

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise problem_error(f"expected an http:// or https:// URL, found {value!r}")
        return value

    @field_validator("renotify_after")
    @classmethod
    def _positive_duration(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise problem_error("expected a duration above 0 (e.g. '1h'), or null to send once")
        return value

    @model_validator(mode="after")
    def _threshold_when_needed(self) -> Self:
        needed = _THRESHOLD_REQUIRED.get(self.on)
        if needed is not None and self.threshold is None:
            raise problem_error(
                f"an alert on {self.on.value} needs a threshold: {needed}", ("threshold",)
            )
        if self.on is AlertEvent.drift and self.threshold is not None and self.threshold > 1:
            raise problem_error(
                f"a drift threshold is a share of drifted columns in (0, 1], found "
                f"{self.threshold:g}",
                ("threshold",),
            )
        return self


class RetrainTrigger(StrEnum):
    """Monitoring events that can start a retraining run."""

    drift = "drift"
    quality_drop = "quality_drop"


_CRON_HELP: Final = (
    "expected a cron expression of 5 fields (minute hour day-of-month month day-of-week), "
    "e.g. '0 3 * * 1' for Mondays at 03:00, or @hourly/@daily/@weekly/@monthly"
)


class RetrainSpec(SpecModel):
    """When the pipeline is run again to retrain the model."""

    schedule: str | None = Field(
        None, description="Cron expression (UTC), e.g. '0 3 * * 1' for Mondays at 03:00."
    )
    on: list[RetrainTrigger] = Field(
        default_factory=list, description="Monitoring events that start a retraining run."
    )
    debounce_windows: int = Field(
        1, ge=1, description="Consecutive windows an event must persist before retraining."
    )
    cooldown: Duration = Field(
        timedelta(hours=6), description="Least time between two retraining runs (e.g. '6h')."
    )
    auto_deploy: bool = Field(
        True,
        description="Roll out a retrained model that passes the gate with the rollout policy.",
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from croniter import croniter

        text = " ".join(value.split())
        fields = text.split(" ")
        if not (text.startswith("@") or len(fields) == 5) or not croniter.is_valid(text):
            raise problem_error(f"{_CRON_HELP}, found {value!r}")
        return text

    @model_validator(mode="after")
    def _has_trigger(self) -> Self:
        if self.schedule is None and not self.on:
            raise problem_error("retrain needs a schedule (cron) or events under 'on', or both")
        return self


class MonitorSpec(SpecModel):
    """Monitoring of the served model."""

    drift: DriftSpec = Field(default_factory=DriftSpec, description="Data drift.")
    quality: QualitySpec | None = Field(
        None, description="Live quality once labels arrive (default: not monitored)."
    )
    alerts: list[AlertSpec] = Field(default_factory=list, description="Webhook alerts.")
    retrain: RetrainSpec | None = Field(
        None, description="Scheduled or event-driven retraining (default: none)."
    )
