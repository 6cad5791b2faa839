"""Input checks and row-to-record conversion for deployments and serving statistics."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from . import _convert as cv
from ._deploy_records import (
    DeploymentEvent,
    DeploymentEventInput,
    DeploymentPolicy,
    DeploymentRecord,
    DeploymentState,
)
from ._tables import DeploymentEventRow, DeploymentRow

WEIGHT_TOLERANCE: Final = 1e-6


def policy(value: str) -> DeploymentPolicy:
    """Return ``value`` as a policy, or say which ones exist."""
    try:
        return DeploymentPolicy(value)
    except ValueError:
        known = ", ".join(p.value for p in DeploymentPolicy)
        raise ValueError(f"unknown deployment policy {value!r}; expected one of {known}") from None


def state(value: str) -> DeploymentState:
    """Return ``value`` as a deployment state, or say which ones exist."""
    try:
        return DeploymentState(value)
    except ValueError:
        known = ", ".join(s.value for s in DeploymentState)
        raise ValueError(f"unknown deployment state {value!r}; expected one of {known}") from None


def model_version(value: object, what: str) -> int:
    """Check that ``value`` is a registry version number (a positive integer)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a model version number (an integer >= 1), got {value!r}")
    return value


def maybe_model_version(value: object, what: str) -> int | None:
    """Like :func:`model_version`, but ``None`` passes."""
    return None if value is None else model_version(value, what)


def count(value: object, what: str) -> int:
    """Check that ``value`` is a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def fraction(value: object, what: str) -> float:
    """Check that ``value`` is a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{what} must be a number from 0 to 1, got {value!r}")
    return float(value)


def text(value: object, what: str, *, empty: bool = False) -> str:
    """Check that ``value`` is a string (a non-blank one unless ``empty``)."""
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise ValueError(f"{what} must be a {'' if empty else 'non-empty '}string, got {value!r}")
    return value


def weights(value: Mapping[int, float], allowed: Collection[int | None]) -> dict[str, float]:
    """Check traffic weights and return them as stored: ``{"<version>": percent}``.

    Every weight must be a finite number >= 0, the sum must be 100, and every version must be
    one of ``allowed`` (the deployment's champion and challenger).
    """
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"weights must map model versions to percentages, got {value!r}")
    stored: dict[int, float] = {}
    for version, percent in value.items():
        model_version(version, "a weights key")
        if version not in allowed:
            names = ", ".join(str(v) for v in allowed if v is not None)
            raise ValueError(
                f"weights give traffic to version {version}, which is neither the champion nor "
                f"the challenger of the deployment (versions {names})"
            )
        if (
            isinstance(percent, bool)
            or not isinstance(percent, int | float)
            or not math.isfinite(percent)
            or percent < 0
        ):
            raise ValueError(
                f"the weight of version {version} must be a percentage >= 0, got {percent!r}"
            )
        stored[version] = float(percent)
    total = math.fsum(stored.values())
    if abs(total - 100.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"weights must sum to 100, got {total:g} in {dict(value)!r}")
    return {str(version): stored[version] for version in sorted(stored)}


def counts(value: Sequence[int], size: int, what: str) -> list[int]:
    """Check a histogram: empty (all zeros) or ``size`` non-negative integers."""
    if isinstance(value, str | bytes) or len(value) not in (0, size):
        raise ValueError(f"{what} must hold {size} counts (or none), got {len(value)}")
    return [count(item, what) for item in value] or [0] * size


def event(value: DeploymentEventInput) -> DeploymentEventInput:
    """Check an event's fields and copy its metrics as they will read back."""
    if not isinstance(value, DeploymentEventInput):
        raise TypeError(f"event must be a DeploymentEventInput, got {type(value).__name__}")
    return DeploymentEventInput(
        kind=text(value.kind, "event kind"),
        actor=text(value.actor, "event actor"),
        reason=text(value.reason, "event reason", empty=True),
        metrics=cv.json_value(dict(value.metrics), "event metrics"),
    )


def _weights_out(stored: Mapping[str, float]) -> dict[int, float]:
    return {int(version): float(percent) for version, percent in stored.items()}


def deployment_record(row: DeploymentRow) -> DeploymentRecord:
    """Detach a deployment row into an immutable record."""
    return DeploymentRecord(
        id=row.id,
        project=row.project,
        champion_version=row.champion_version,
        challenger_version=row.challenger_version,
        policy=DeploymentPolicy(row.policy),
        config=cv.json_value(row.config, "config"),
        weights=_weights_out(row.weights),
        shadow_version=row.shadow_version,
        shadow_rate=row.shadow_rate,
        state=DeploymentState(row.state),
        step=row.step,
        step_started_at=row.step_started_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        actor=row.actor,
        reason=row.reason,
        version=row.version,
    )


def deployment_event(row: DeploymentEventRow) -> DeploymentEvent:
    """Detach a deployment-event row into an immutable record."""
    return DeploymentEvent(
        id=row.id,
        deployment_id=row.deployment_id,
        at=row.at,
        kind=row.kind,
        actor=row.actor,
        reason=row.reason,
        from_state=None if row.from_state is None else DeploymentState(row.from_state),
        to_state=DeploymentState(row.to_state),
        weights=_weights_out(row.weights),
        metrics=cv.json_value(row.metrics, "metrics"),
    )


def as_mapping(value: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    """Copy an optional JSON object as it will read back."""
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping, got {type(value).__name__}")
    copied: dict[str, Any] = cv.json_value(dict(value or {}), what)
    return copied
