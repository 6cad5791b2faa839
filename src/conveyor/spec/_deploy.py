"""``rollout:`` and ``serve:`` — how a new version takes traffic, and how it is served."""

from __future__ import annotations

from typing import Annotated, Final, Literal, Self

from pydantic import Field, Tag, field_validator, model_validator

from conveyor.spec._base import (
    RelPath,
    SpecModel,
    problem_error,
    raise_problems,
    tag_discriminator,
)
from conveyor.spec._metrics import Direction

__all__ = [
    "AbRollout",
    "BatchingSpec",
    "BlueGreenRollout",
    "CanaryRollout",
    "Guardrails",
    "PredictionLogSpec",
    "ResponseCacheSpec",
    "Rollout",
    "ServeSpec",
    "ShadowRollout",
]


_ERROR_OUTCOMES: Final = frozenset({"absolute_error", "squared_error"})
"""Built-in A/B outcomes that are continuous and better when lower."""


class Guardrails(SpecModel):
    """Limits that roll a new version back automatically when crossed; null disables one."""

    error_rate: float | None = Field(
        0.01, ge=0, le=1, description="Largest share of failed requests of the new version."
    )
    p99_latency_ms: float | None = Field(
        None, gt=0, description="Largest 99th-percentile latency of the new version (ms)."
    )
    prediction_psi: float | None = Field(
        None,
        gt=0,
        description="Largest PSI between the new and the current version's prediction "
        "distributions.",
    )
    quality_drop: float | None = Field(
        None,
        gt=0,
        description="Largest drop of the monitored quality metric, once labels arrive.",
    )
    min_requests: int = Field(
        20,
        ge=1,
        description="Requests (and, for quality_drop, labelled requests) the new version must "
        "serve before its error rate, latency, PSI and quality are judged; earlier, only an "
        "error rate that is certainly above the limit rolls back.",
    )


class _RolloutBase(SpecModel):
    policy: str = Field(description="Rollout policy.")  # narrowed by each policy; listed first
    min_requests_per_step: int = Field(
        500, ge=0, description="Requests the new version must serve before the next step."
    )
    min_seconds_per_step: float = Field(
        60, ge=0, description="Seconds each step lasts at least before the next one."
    )
    guardrails: Guardrails = Field(
        default_factory=Guardrails, description="Automatic rollback thresholds."
    )
    auto_rollback: bool = Field(
        True, description="Roll back automatically when a guardrail is crossed."
    )


class CanaryRollout(_RolloutBase):
    """Shift traffic to the new version in increasing steps, checking guardrails at each."""

    policy: Literal["canary"] = Field("canary", description="Rollout policy: 'canary'.")
    steps: list[float] = Field(
        default_factory=lambda: [5.0, 25.0, 50.0, 100.0],
        min_length=1,
        description="Percentages of traffic for the new version, increasing and ending at 100.",
    )

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[float]) -> list[float]:
        problems: list[tuple[RelPath, str]] = []
        for index, percent in enumerate(steps):
            if not 0 < percent <= 100:
                problems.append(
                    ((index,), f"expected a percentage above 0 and at most 100, found {percent:g}")
                )
            elif index and percent <= steps[index - 1]:
                problems.append(
                    (
                        (index,),
                        f"steps must increase: {percent:g} does not exceed the step before it "
                        f"({steps[index - 1]:g})",
                    )
                )
        if not problems and steps[-1] != 100:
            problems.append(
                ((len(steps) - 1,), f"the last step must be 100 (all traffic), found {steps[-1]:g}")
            )
        raise_problems(problems)
        return steps


class BlueGreenRollout(_RolloutBase):
    """Start the new version beside the old one, check it, then switch all traffic at once."""

    policy: Literal["blue_green"] = Field(description="Rollout policy: 'blue_green'.")
    synthetic_requests: int = Field(
        20,
        ge=0,
        description="Synthetic requests the warmed new version must answer without error "
        "before the switch (0 skips the check).",
    )
    bake_seconds: float | None = Field(
        None,
        ge=0,
        description="Seconds the new version serves all traffic, with the old one kept warm "
        "for an instant rollback, before it is promoted (default: min_seconds_per_step).",
    )


class AbRollout(_RolloutBase):
    """Split traffic between champion and challenger for a fixed experiment, then decide."""

    policy: Literal["ab"] = Field(description="Rollout policy: 'ab'.")
    split: float = Field(
        50, gt=0, lt=100, description="Percentage of traffic sent to the challenger."
    )
    metric: str = Field(
        "accuracy",
        min_length=1,
        description="Per-request outcome compared once it is known: 'accuracy' "
        "(classification: 1 when the predicted class is the label, else 0), 'absolute_error' "
        "or 'squared_error' (regression), taken from the labels ingested with `conveyor labels "
        "ingest` (joined to the prediction log) and otherwise from what clients report with "
        "POST /outcomes; or the name of an outcome clients report (e.g. 'converted').",
    )
    direction: Direction | None = Field(
        None,
        description="Whether a higher ('maximize') or lower ('minimize') outcome is better "
        "(default: minimize for the *_error metrics, maximize otherwise).",
    )
    test: Literal["two_proportion", "welch", "sequential"] = Field(
        "two_proportion",
        description="'two_proportion' (z test of 0/1 outcomes) or 'welch' (t test of means), "
        "both run once the planned sample size is reached; 'sequential' (mixture SPRT) is "
        "checked continuously and may stop early without inflating false positives.",
    )
    alpha: float = Field(
        0.05, gt=0, le=0.5, description="Significance level (false-positive rate) of the test."
    )
    power: float = Field(
        0.8,
        ge=0.5,
        lt=1,
        description="Chance of detecting an effect of minimum_detectable_effect; sets the "
        "planned sample size.",
    )
    minimum_detectable_effect: float = Field(
        0.02,
        gt=0,
        description="Smallest difference of the outcome worth detecting, in the outcome's "
        "units (0.02 = 2 percentage points of accuracy); also the sequential test's prior scale.",
    )
    baseline_rate: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Expected outcome rate of the champion, used to plan a two_proportion "
        "sample size (default: the champion's observed rate).",
    )
    sample_size: int | None = Field(
        None,
        ge=2,
        description="Labelled outcomes per version before the test decides (default: computed "
        "from minimum_detectable_effect, alpha and power); the sequential test's horizon.",
    )
    promote_if: Literal["not_worse", "better"] = Field(
        "not_worse",
        description="'not_worse' promotes unless the champion is significantly better; "
        "'better' promotes only when the challenger is significantly better.",
    )
    sticky_header: str | None = Field(
        None,
        min_length=1,
        description="Request header whose value assigns a caller to a version for the whole "
        "experiment (e.g. 'x-user-id').",
    )
    sticky_field: str | None = Field(
        None,
        min_length=1,
        description="Input field used as the sticky key when the header is absent "
        "(e.g. 'user_id'); with neither, each request is assigned at random.",
    )

    @field_validator("sticky_header")
    @classmethod
    def _lowercase(cls, value: str | None) -> str | None:
        return None if value is None else value.strip().lower()  # HTTP headers ignore case

    @model_validator(mode="after")
    def _test_fits_metric(self) -> Self:
        if self.test == "two_proportion" and self.metric in _ERROR_OUTCOMES:
            raise problem_error(
                f"the two_proportion test compares shares of 0/1 outcomes, but {self.metric!r} "
                "is a continuous error; use test: welch or test: sequential",
                ("test",),
            )
        return self

    @property
    def higher_is_better(self) -> bool:
        """Whether a higher outcome is better, after the default for the metric is applied."""
        if self.direction is None:
            return self.metric not in _ERROR_OUTCOMES
        return self.direction is Direction.maximize


class ShadowRollout(_RolloutBase):
    """Mirror requests to the new version without returning its answers."""

    policy: Literal["shadow"] = Field(description="Rollout policy: 'shadow'.")
    sample_rate: float = Field(
        1.0, gt=0, le=1, description="Share of requests mirrored to the new version."
    )
    min_agreement: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of mirrored requests on which both versions must predict the same "
        "class for an automatic promotion (default: no automatic promotion).",
    )
    max_mean_abs_diff: float | None = Field(
        None,
        ge=0,
        description="Largest mean absolute difference of the two versions' scores for an "
        "automatic promotion (default: no automatic promotion).",
    )


Rollout = Annotated[
    Annotated[CanaryRollout, Tag("canary")]
    | Annotated[BlueGreenRollout, Tag("blue_green")]
    | Annotated[AbRollout, Tag("ab")]
    | Annotated[ShadowRollout, Tag("shadow")],
    tag_discriminator("policy", default="canary"),
]
"""A rollout policy, selected by ``policy`` (default ``canary``)."""


class BatchingSpec(SpecModel):
    """Adaptive micro-batching of concurrent requests."""

    enabled: bool = Field(True, description="Whether requests are batched.")
    max_batch_size: int = Field(64, ge=1, description="Most rows predicted in one call.")
    max_wait_ms: float = Field(
        2.0, ge=0, description="Longest a request waits for others to fill a batch (ms)."
    )


class PredictionLogSpec(SpecModel):
    """Logging of requests and predictions (Parquet, partitioned by date and version)."""

    enabled: bool = Field(True, description="Whether predictions are logged.")
    sample_rate: float = Field(1.0, ge=0, le=1, description="Share of predictions logged.")
    flush_seconds: float = Field(
        5.0, gt=0, description="Seconds between writes of buffered predictions."
    )


class ResponseCacheSpec(SpecModel):
    """An in-memory LRU cache of responses, per worker, keyed by model version and input."""

    enabled: bool = Field(
        False,
        description="Whether repeated inputs are answered from the cache (only for "
        "deterministic models; cached answers are still logged).",
    )
    max_entries: int = Field(10_000, ge=1, description="Responses kept per worker.")
    ttl_seconds: float = Field(60.0, gt=0, description="How long a cached response is valid.")


class ServeSpec(SpecModel):
    """The prediction server."""

    host: str = Field("127.0.0.1", description="Interface to listen on ('0.0.0.0' for all).")
    port: int = Field(8000, ge=1, le=65535, description="TCP port.")
    workers: int = Field(1, ge=1, description="Worker processes.")
    model_threads: int = Field(
        1,
        ge=1,
        description="Threads each model may use per worker (keep workers x threads <= cores).",
    )
    runtime: Literal["auto", "onnx", "native"] = Field(
        "auto",
        description="'onnx' uses ONNX Runtime, 'native' the training library; 'auto' uses ONNX "
        "when the exported model was verified to match.",
    )
    batching: BatchingSpec = Field(
        default_factory=BatchingSpec, description="Micro-batching of requests."
    )
    prediction_log: PredictionLogSpec = Field(
        default_factory=PredictionLogSpec, description="Prediction logging."
    )
    store_grace_seconds: float = Field(
        60.0,
        gt=0,
        description="How long the metadata store may be unreachable before /readyz says 503 "
        "(predictions go on with the last known deployment).",
    )
    max_body_mb: float = Field(
        10.0, gt=0, description="Largest request body accepted (MB); larger ones get 413."
    )
    cache: ResponseCacheSpec = Field(
        default_factory=ResponseCacheSpec, description="Response cache."
    )
