"""``rollout:`` and ``serve:`` — how a new version takes traffic, and how it is served."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Tag, field_validator

from conveyor.spec._base import RelPath, SpecModel, raise_problems, tag_discriminator

__all__ = [
    "AbRollout",
    "BatchingSpec",
    "BlueGreenRollout",
    "CanaryRollout",
    "Guardrails",
    "PredictionLogSpec",
    "Rollout",
    "ServeSpec",
    "ShadowRollout",
]


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


class AbRollout(_RolloutBase):
    """Split traffic between champion and challenger for a fixed experiment, then decide."""

    policy: Literal["ab"] = Field(description="Rollout policy: 'ab'.")
    split: float = Field(
        50, gt=0, lt=100, description="Percentage of traffic sent to the challenger."
    )


class ShadowRollout(_RolloutBase):
    """Mirror requests to the new version without returning its answers."""

    policy: Literal["shadow"] = Field(description="Rollout policy: 'shadow'.")
    sample_rate: float = Field(
        1.0, gt=0, le=1, description="Share of requests mirrored to the new version."
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
