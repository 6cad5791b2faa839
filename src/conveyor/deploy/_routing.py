"""Which model version answers a request: a traffic plan and the router that follows it.

A request key (a user id, say) is hashed with the deployment's salt into one of
:data:`BUCKETS` buckets; the versions own consecutive bucket ranges in ascending version order.
So the same key reaches the same version on every replica and after every restart, and moving a
boundary only moves the keys between its two neighbours: when a challenger grows from 5 % to
25 % every key it already had stays with it (with two versions this holds whichever is first).
Requests without a key draw a random bucket instead.

The hash is BLAKE2b (never Python's per-process salted ``hash()``); one 16-byte digest gives two
independent buckets, one for the version and one for shadow sampling.
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["BUCKETS", "RouteDecision", "Router", "TrafficPlan"]

BUCKETS = 10_000
"""Hash buckets of a plan: weights are honoured to 0.01 %."""

_WEIGHT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class TrafficPlan:
    """Traffic weights (percent per model version) and an optional shadow version.

    Args:
        weights: Percent of traffic per version; non-negative, summing to 100. A version at 0
            stays loaded (warm) but answers nothing.
        shadow_version: Version that receives a copy of sampled requests, off the response path.
        shadow_rate: Share (0..1) of requests mirrored to ``shadow_version``.
        salt: Mixed into the hash (the deployment id), so each deployment splits users afresh.

    Raises:
        ValueError: the weights are negative, do not sum to 100, or the shadow rate is outside
            0..1.
    """

    weights: Mapping[int, float]
    shadow_version: int | None = None
    shadow_rate: float = 0.0
    salt: str = ""

    def __post_init__(self) -> None:
        weights = MappingProxyType({int(v): float(w) for v, w in sorted(self.weights.items())})
        bad = {v: w for v, w in weights.items() if not (w >= 0 and math.isfinite(w))}
        if bad:
            raise ValueError(f"traffic weights must be finite and >= 0, found {bad}")
        total = math.fsum(weights.values())
        if abs(total - 100) > _WEIGHT_TOLERANCE:
            raise ValueError(
                f"traffic weights must sum to 100 (percent), found {total:g} in {dict(weights)}"
            )
        if not 0 <= self.shadow_rate <= 1:
            raise ValueError(f"shadow_rate must lie between 0 and 1, found {self.shadow_rate}")
        object.__setattr__(self, "weights", weights)

    @classmethod
    def single(cls, version: int, salt: str = "") -> TrafficPlan:
        """All traffic to one version."""
        return cls({version: 100.0}, salt=salt)


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Where one request goes.

    ``version`` answers; ``shadow`` (if not None) gets a copy whose answer is only logged;
    ``sticky`` says the choice came from the request key (and so repeats for that key).
    """

    version: int
    shadow: int | None = None
    sticky: bool = False


@dataclass(frozen=True)
class _Table:
    versions: tuple[int, ...]
    bounds: tuple[int, ...]  # exclusive upper bucket of each version, in version order
    shadow_bucket: int  # requests whose shadow bucket is below this are mirrored
    decisions: Mapping[tuple[int, bool, bool], RouteDecision] = field(repr=False)


def _table(plan: TrafficPlan) -> _Table:
    versions, bounds = [], []
    cumulative = 0.0
    for version, weight in plan.weights.items():
        cumulative += weight
        if weight > 0:  # a version at 0 % owns no bucket
            versions.append(version)
            bounds.append(round(cumulative * BUCKETS / 100))
    bounds[-1] = BUCKETS  # absorb rounding so every bucket has an owner
    shadow = plan.shadow_version
    decisions = {
        (index, sticky, mirrored): RouteDecision(
            version, shadow if mirrored and shadow != version else None, sticky
        )
        for index, version in enumerate(versions)
        for sticky in (False, True)
        for mirrored in (False, True)
    }
    shadow_bucket = round(plan.shadow_rate * BUCKETS) if shadow is not None else 0
    return _Table(tuple(versions), tuple(bounds), shadow_bucket, decisions)


class Router:
    """Routes requests by a :class:`TrafficPlan`; cheap enough to call on every request.

    Everything is computed when the router is built: :meth:`route` costs one BLAKE2b digest
    (keyed requests) or one random draw, a bisection over a handful of bounds and a dict look-up,
    and returns shared immutable :class:`RouteDecision` objects. A router is immutable apart from
    its random generator, so one instance may serve every thread; build a new router when the
    plan changes.

    Args:
        plan: The traffic plan.
        seed: Seeds the generator used for requests without a key (tests).
    """

    def __init__(self, plan: TrafficPlan, seed: int | None = None) -> None:
        self.plan = plan
        table = _table(plan)
        self._bounds = table.bounds
        self._shadow_bucket = table.shadow_bucket
        self._decisions = table.decisions
        self._hasher = hashlib.blake2b(plan.salt.encode() + b"\x00", digest_size=16)
        self._random = random.Random(seed).random

    def bucket(self, key: str) -> tuple[int, int]:
        """The version bucket and the independent shadow bucket of ``key``, each in [0, BUCKETS)."""
        hasher = self._hasher.copy()
        hasher.update(key.encode())
        digest = hasher.digest()
        return (
            int.from_bytes(digest[:8], "little") % BUCKETS,
            int.from_bytes(digest[8:], "little") % BUCKETS,
        )

    def route(self, key: str | None = None) -> RouteDecision:
        """Choose the version for one request; the same ``key`` always gets the same answer."""
        if key is None:
            index = bisect_right(self._bounds, self._random() * BUCKETS)
            mirrored = bool(self._shadow_bucket) and self._random() * BUCKETS < self._shadow_bucket
            return self._decisions[index, False, mirrored]
        version_bucket, shadow_bucket = self.bucket(key)
        index = bisect_right(self._bounds, version_bucket)
        return self._decisions[index, True, shadow_bucket < self._shadow_bucket]
