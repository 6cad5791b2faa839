"""The fixed buckets of the serving statistics, and the arithmetic on them.

Every replica counts its requests in the same buckets, so the store can add the counts of any
number of replicas and windows element by element and still estimate quantiles from the sum
(averaging each replica's p99 would not give the fleet's p99). The bucket bounds are part of
the stored format: changing them needs a migration of ``serving_stats``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

__all__ = [
    "LATENCY_BUCKETS_MS",
    "SCORE_BINS",
    "STATS_WINDOW_S",
    "add_counts",
    "latency_bucket",
    "latency_quantile",
    "score_bin",
    "stats_window",
]

STATS_WINDOW_S: Final = 10
"""Length of one statistics window in seconds; windows start at multiples of it (UTC)."""

LATENCY_BUCKETS_MS: Final[tuple[float, ...]] = (
    0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0,
    100.0, 150.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 2000.0, 5000.0, 10000.0,
)  # fmt: skip
"""Upper bounds (inclusive, in milliseconds) of the latency buckets.

Latency counts have one more element than this tuple: the last one counts requests slower
than the last bound.
"""

SCORE_BINS: Final = 20
"""Number of equal-width bins of prediction scores over [0, 1] (bin ``i`` holds
``[i/20, (i+1)/20)``, and the last one also 1.0)."""


def latency_bucket(ms: float) -> int:
    """Return the index in the latency counts of a request that took ``ms`` milliseconds.

    A latency equal to a bound belongs to that bound's bucket (Prometheus' ``le``).
    """
    if math.isnan(ms) or ms < 0:
        raise ValueError(f"a latency must be a non-negative number of milliseconds, got {ms}")
    return bisect_left(LATENCY_BUCKETS_MS, ms)


def score_bin(score: float) -> int:
    """Return the index in the score counts of a predicted probability ``score`` in [0, 1].

    Vectorised equivalent: ``numpy.minimum((scores * SCORE_BINS).astype(int), SCORE_BINS - 1)``.
    """
    if not 0.0 <= score <= 1.0:  # also rejects NaN
        raise ValueError(f"a prediction score must be a probability in [0, 1], got {score}")
    return min(int(score * SCORE_BINS), SCORE_BINS - 1)


def stats_window(at: datetime) -> datetime:
    """Return the start of the statistics window holding ``at`` (aware UTC).

    Raises:
        ValueError: ``at`` is naive.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a window time must be timezone-aware, got naive {at.isoformat()}")
    seconds = math.floor(at.timestamp() / STATS_WINDOW_S) * STATS_WINDOW_S
    return datetime.fromtimestamp(seconds, UTC)


def add_counts(left: Sequence[int], right: Sequence[int]) -> list[int]:
    """Add two histograms element by element (they must have the same length)."""
    if len(left) != len(right):
        raise ValueError(f"cannot add histograms of {len(left)} and {len(right)} buckets")
    return [a + b for a, b in zip(left, right, strict=True)]


def latency_quantile(counts: Sequence[int], q: float) -> float | None:
    """Estimate the ``q``-quantile of latency (ms) from counts in :data:`LATENCY_BUCKETS_MS`.

    Interpolates linearly inside the bucket holding the quantile, as Prometheus'
    ``histogram_quantile`` does: the estimate is never below the bucket's lower bound nor above
    its upper bound, so its error is at most the bucket's width. The first bucket starts at 0.
    When the quantile falls in the overflow bucket, the last finite bound is returned (a lower
    bound of the truth).

    Returns:
        The estimate in milliseconds, or ``None`` when ``counts`` is empty of observations.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a quantile must be in [0, 1], got {q}")
    if len(counts) != len(LATENCY_BUCKETS_MS) + 1:
        raise ValueError(
            f"latency counts need {len(LATENCY_BUCKETS_MS) + 1} buckets, got {len(counts)}"
        )
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    below = 0
    for index, count in enumerate(counts):
        if count > 0 and below + count >= rank:
            if index == len(LATENCY_BUCKETS_MS):
                return LATENCY_BUCKETS_MS[-1]
            lower = LATENCY_BUCKETS_MS[index - 1] if index else 0.0
            upper = LATENCY_BUCKETS_MS[index]
            return lower + (upper - lower) * max(rank - below, 0.0) / count
        below += count
    return LATENCY_BUCKETS_MS[-1]  # unreachable: the loop ends at the last non-empty bucket
