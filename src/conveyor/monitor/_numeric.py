"""Drift statistics of numeric columns, many columns at a time.

Each column is sorted once per side (in place; missing values, NaN, sort last). From the two
sorted columns everything follows without another pass over the rows in Python:

* PSI and Jensen-Shannon bins: the reference's quantiles (``bins`` of them, numpy's linear
  interpolation) become the bin edges; a bin's count is the difference of two
  ``searchsorted`` positions, so binning costs ``O(bins · log n)`` per column. Missing values
  get a bin of their own. A value equal to an edge falls into the upper bin; tied quantiles
  (discrete columns) merge bins.
* KS and Wasserstein-1: a stable argsort of the two sorted columns laid end to end is a merge
  (timsort finds the two runs), giving both empirical CDFs at every point of the union. The
  KS statistic is their largest gap at the end of each run of tied values, exactly what
  ``scipy.stats.ks_2samp`` computes; its p-value is the asymptotic one
  (``kstwo.sf(D, round(n·m / (n + m)))``, ``method="asymp"`` in scipy). Wasserstein-1 is the
  area between the CDFs, as ``scipy.stats.wasserstein_distance``; the reported value is
  divided by the reference's standard deviation (population, ``ddof=0``), so that 0.1 means a
  tenth of the reference's spread whatever the column's unit (Evidently's normalisation). A
  constant reference divides by 1.

Columns are processed by a small thread pool: numpy releases the GIL while it sorts and
merges, so two cores work on two columns at once.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from conveyor.monitor._report import Histogram

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["EPS", "PLOT_BINS", "NumericStats", "numeric_statistics", "psi", "threads"]

EPS: Final = 1e-4
"""Shares below this count as this in PSI, so an empty bin does not make it infinite."""
PLOT_BINS: Final = 30
"""Equal-width bins of the histograms drawn in the HTML report."""
_PLOT_TAIL: Final = 0.005
"""The plots span both sides' 0.5 %-99.5 % quantiles; values beyond go to the end bins."""


@dataclass(frozen=True)
class NumericStats:
    """Statistics of one numeric column (None where one side has no values)."""

    reference_rows: int
    current_rows: int
    reference_missing: int
    current_missing: int
    psi: float
    jensen_shannon: float
    ks: float | None
    ks_pvalue: float | None
    wasserstein: float | None
    wasserstein_raw: float | None
    reference_std: float | None
    edges: tuple[float, ...]
    histogram: Histogram


@dataclass(frozen=True)
class _Sorted:
    """What one column's pass produced, before the vectorised tail of the computation."""

    ref_counts: NDArray[np.int64]
    cur_counts: NDArray[np.int64]
    edges: tuple[float, ...]
    ks: float | None
    wasserstein_raw: float | None
    std: float | None
    histogram: Histogram


def threads() -> int:
    """Worker threads for the per-column work: the usable cores, at most 4."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))


def numeric_statistics(
    reference: NDArray[np.float32],
    current: NDArray[np.float32],
    bins: int,
    workers: int | None = None,
) -> list[NumericStats]:
    """Compare each row of ``reference`` with the same row of ``current``.

    Args:
        reference: ``(columns, n)`` values, one row per column, NaN for missing values.
            Sorted in place.
        current: ``(columns, m)`` values of the same columns. Sorted in place.
        bins: Quantile bins of the reference for PSI and the numeric Jensen-Shannon distance.
        workers: Threads (default: :func:`threads`).
    """
    import numpy as np

    if reference.shape[0] != current.shape[0]:
        raise ValueError(
            f"expected the same columns on both sides, found {reference.shape[0]} and "
            f"{current.shape[0]}"
        )
    k = reference.shape[0]
    if k == 0:
        return []
    jobs = range(k)
    workers = workers or threads()
    if workers > 1 and k > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            passes = list(pool.map(lambda j: _column(reference[j], current[j], bins), jobs))
    else:
        passes = [_column(reference[j], current[j], bins) for j in jobs]

    ref_counts = np.stack([p.ref_counts for p in passes])
    cur_counts = np.stack([p.cur_counts for p in passes])
    n, m = reference.shape[1], current.shape[1]
    ref_missing, cur_missing = ref_counts[:, -1], cur_counts[:, -1]
    psis = psi(ref_counts, cur_counts)
    js = _jensen_shannon(ref_counts, cur_counts)
    pvalues = _ks_pvalues([p.ks for p in passes], n - ref_missing, m - cur_missing)
    out = []
    for j, p in enumerate(passes):
        normalised = None
        if p.wasserstein_raw is not None and p.std is not None:
            normalised = p.wasserstein_raw / (p.std if p.std > 0 else 1.0)
        out.append(
            NumericStats(
                reference_rows=n,
                current_rows=m,
                reference_missing=int(ref_missing[j]),
                current_missing=int(cur_missing[j]),
                psi=float(psis[j]),
                jensen_shannon=float(js[j]),
                ks=p.ks,
                ks_pvalue=pvalues[j],
                wasserstein=normalised,
                wasserstein_raw=p.wasserstein_raw,
                reference_std=p.std,
                edges=p.edges,
                histogram=p.histogram,
            )
        )
    return out


def psi(
    reference: NDArray[np.int64], current: NDArray[np.int64], eps: float = EPS
) -> NDArray[np.float64]:
    """Population stability index of each row's histograms (bins on the last axis).

    ``Σ (c - r) · ln(c / r)`` over the bins' shares, shares floored at ``eps``; a side with
    no counts at all has every share at ``eps``.
    """
    import numpy as np

    r = _shares(reference)
    c = _shares(current)
    r = np.maximum(r, eps)
    c = np.maximum(c, eps)
    result: NDArray[np.float64] = np.sum((c - r) * np.log(c / r), axis=-1)
    return result


def _shares(counts: NDArray[np.int64]) -> NDArray[np.float64]:
    import numpy as np

    totals = counts.sum(axis=-1, keepdims=True)
    shares: NDArray[np.float64] = counts / np.maximum(totals, 1)
    return shares


def _jensen_shannon(
    reference: NDArray[np.int64], current: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Base-2 Jensen-Shannon distance of each row's bins (the missing bin included)."""
    import numpy as np
    from scipy.spatial.distance import jensenshannon

    distance = jensenshannon(reference, current, base=2, axis=-1)
    return np.asarray(distance, dtype=np.float64)


def _ks_pvalues(
    statistics: list[float | None], n: NDArray[np.int64], m: NDArray[np.int64]
) -> list[float | None]:
    import numpy as np
    from scipy.stats import kstwo

    d = np.array([np.nan if s is None else s for s in statistics], dtype=np.float64)
    big, small = np.maximum(n, m).astype(np.float64), np.minimum(n, m).astype(np.float64)
    en = np.round(big * small / np.maximum(big + small, 1))
    ok = ~np.isnan(d)
    p = np.full(len(d), np.nan)
    if ok.any():
        p[ok] = np.clip(kstwo.sf(d[ok], en[ok]), 0.0, 1.0)
    return [None if np.isnan(v) else float(v) for v in p]


def _column(ref: NDArray[np.float32], cur: NDArray[np.float32], bins: int) -> _Sorted:
    import numpy as np

    ref.sort()
    cur.sort()
    nv = int(np.searchsorted(ref, np.float32(np.nan)))
    mv = int(np.searchsorted(cur, np.float32(np.nan)))
    r, c = ref[:nv], cur[:mv]
    edges = _quantile_edges(r, bins)
    ks = wasserstein = std = None
    if nv and mv:
        ks, wasserstein = _ks_wasserstein(r, c)
        std = float(np.std(r, dtype=np.float64))
    return _Sorted(
        ref_counts=_counts(r, edges, bins, len(ref) - nv),
        cur_counts=_counts(c, edges, bins, len(cur) - mv),
        edges=tuple(float(e) for e in edges),
        ks=ks,
        wasserstein_raw=wasserstein,
        std=std,
        histogram=_plot_histogram(r, c),
    )


def _quantile_edges(values: NDArray[np.float32], bins: int) -> NDArray[np.float32]:
    """The reference's inner quantiles ``1/bins, ..., (bins-1)/bins``, without repeats."""
    import numpy as np

    n = len(values)
    if n == 0:
        return np.empty(0, dtype=np.float32)
    position = np.arange(1, bins) / bins * (n - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, n - 1)
    frac = position - low
    quantiles = values[low] + (values[high].astype(np.float64) - values[low]) * frac
    edges: NDArray[np.float32] = np.unique(quantiles.astype(np.float32))
    return edges


def _counts(
    values: NDArray[np.float32], edges: NDArray[np.float32], bins: int, missing: int
) -> NDArray[np.int64]:
    """Counts of sorted ``values`` in the bins split by ``edges``, padded to ``bins``, then
    the missing count."""
    import numpy as np

    below = np.searchsorted(values, edges, side="left")
    cuts = np.concatenate(([0], below, [len(values)]))
    counts = np.zeros(bins + 1, dtype=np.int64)
    counts[: len(cuts) - 1] = np.diff(cuts)
    counts[-1] = missing
    return counts


def _ks_wasserstein(r: NDArray[np.float32], c: NDArray[np.float32]) -> tuple[float, float]:
    """Two-sample KS statistic and Wasserstein-1 distance of two sorted, non-empty columns."""
    import numpy as np

    n, m = len(r), len(c)
    both = np.concatenate((r, c), dtype=np.float64)
    order = np.argsort(both, kind="stable")  # a merge of two sorted runs
    merged = both[order]
    del both
    # gap = (F_ref - F_cur) * n * m after each position: a reference value adds m, a current
    # one takes n away; whole numbers, exact in float64
    gap = np.where(order >= n, float(-n), float(m))
    del order
    np.cumsum(gap, out=gap)
    np.abs(gap, out=gap)
    steps = np.diff(merged)
    del merged
    wasserstein = float(np.dot(gap[:-1], steps)) / (n * m)
    run_ends = steps != 0  # the CDFs are compared after the last of each run of ties
    inner = gap[:-1].max(initial=0.0) if run_ends.all() else gap[:-1][run_ends].max(initial=0.0)
    ks = max(float(inner), float(gap[-1])) / (n * m)
    return ks, wasserstein


def _plot_histogram(r: NDArray[np.float32], c: NDArray[np.float32]) -> Histogram:
    """Equal-width counts over both sides' central range, for the report's plots."""
    import numpy as np

    ends = []
    for values in (r, c):
        if len(values):
            last = len(values) - 1
            ends += [values[int(_PLOT_TAIL * last)], values[int((1 - _PLOT_TAIL) * last)]]
    if not ends:
        return Histogram(labels=(), reference=(), current=(), edges=())
    low, high = float(min(ends)), float(max(ends))
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, PLOT_BINS + 1)
    inner = edges[1:-1].astype(np.float32)

    def counts(values: NDArray[np.float32]) -> tuple[int, ...]:
        cuts = np.concatenate(([0], np.searchsorted(values, inner), [len(values)]))
        return tuple(int(x) for x in np.diff(cuts))

    return Histogram(
        labels=(),
        reference=counts(r),
        current=counts(c),
        edges=tuple(float(e) for e in edges),
    )
