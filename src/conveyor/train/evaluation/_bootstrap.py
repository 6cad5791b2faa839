"""Row resampling as count matrices, drawn in chunks so memory stays bounded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["count_matrices", "percentile_interval"]

CHUNK_CELLS: Final = 2_000_000
"""Cells of one ``(resamples, rows)`` chunk: 16 MB per float64 matrix."""


def count_matrices(n: int, n_bootstrap: int, seed: int) -> Iterator[NDArray[np.float64]]:
    """Yield ``(b, n)`` matrices whose row ``r`` counts how often each row was drawn.

    Each resample draws ``n`` rows with replacement from a ``numpy`` Generator seeded with
    ``seed``; the chunks together hold ``n_bootstrap`` resamples. Every metric of an
    evaluation sees the same resamples, so paired comparisons are paired.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    per_chunk = max(1, CHUNK_CELLS // max(n, 1))
    done = 0
    while done < n_bootstrap:
        b = min(per_chunk, n_bootstrap - done)
        drawn = rng.integers(0, n, size=(b, n))
        drawn += np.arange(b)[:, None] * n  # one bincount for the whole chunk
        counts = np.bincount(drawn.ravel(), minlength=b * n).reshape(b, n)
        yield counts.astype(np.float64)
        done += b


def percentile_interval(values: NDArray[np.float64], confidence: float) -> tuple[float, float, int]:
    """``(low, high, samples)``: the percentile interval of the finite ``values``.

    ``samples`` counts the resamples where the metric was defined; with none, the bounds
    are NaN.
    """
    import numpy as np

    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return float("nan"), float("nan"), 0
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high), len(finite)
