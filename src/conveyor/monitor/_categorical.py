"""Drift statistics of categorical columns, from the two sides' category counts.

Missing values count as one more category, so a column that starts arriving empty drifts.

* chi-square: the test of homogeneity on the 2 x K table of counts (as
  ``scipy.stats.chi2_contingency(..., correction=False)``), its p-value, and Cramér's V,
  ``sqrt(chi2 / N)`` for two rows: an effect size in [0, 1] that does not grow with the
  sample, which is what the ``chi_square`` method compares with its threshold.
* Jensen-Shannon distance of the two frequency vectors, base 2 (in [0, 1]).
* PSI over the categories, shares floored at :data:`~conveyor.monitor._numeric.EPS`.
* Unseen categories: those in the current window that the reference never had, counted
  (distinct values) and as their share of the current rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from conveyor.monitor._numeric import psi
from conveyor.monitor._report import Histogram

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    from numpy.typing import NDArray

__all__ = ["PLOT_CATEGORIES", "CategoricalStats", "categorical_statistics", "value_counts"]

PLOT_CATEGORIES: Final = 20
"""Categories drawn in the report's plots; less frequent ones are summed as ``(other)``."""


@dataclass(frozen=True)
class CategoricalStats:
    """Statistics of one categorical column."""

    reference_rows: int
    current_rows: int
    reference_missing: int
    current_missing: int
    psi: float
    jensen_shannon: float
    chi_square: float
    chi_square_pvalue: float
    cramers_v: float
    categories: int
    unseen_categories: int
    unseen_share: float
    histogram: Histogram


def value_counts(values: pa.Array | pa.ChunkedArray) -> tuple[dict[str, int], int]:
    """Counts of each non-missing value, and the number of missing ones."""
    import pyarrow.compute as pc

    counts: dict[str, int] = {}
    for entry in pc.value_counts(values).to_pylist():
        if entry["values"] is not None:
            counts[str(entry["values"])] = int(entry["counts"])
    return counts, int(values.null_count)


def categorical_statistics(
    reference: tuple[dict[str, int], int], current: tuple[dict[str, int], int]
) -> CategoricalStats:
    """Compare the category counts of the two sides (each from :func:`value_counts`)."""
    import numpy as np

    ref_counts, ref_missing = reference
    cur_counts, cur_missing = current
    # Most frequent first (both sides together), ties by name, so plots and JSON are stable.
    names = sorted(
        set(ref_counts) | set(cur_counts),
        key=lambda v: (-(ref_counts.get(v, 0) + cur_counts.get(v, 0)), v),
    )
    r = np.array([ref_counts.get(v, 0) for v in names] + [ref_missing], dtype=np.int64)
    c = np.array([cur_counts.get(v, 0) for v in names] + [cur_missing], dtype=np.int64)
    n, m = int(r.sum()), int(c.sum())
    if n == 0 or m == 0:
        raise ValueError(f"both sides need rows, found {n} and {m}")
    seen = r > 0
    seen |= c > 0
    chi2, pvalue, cramers_v = _chi_square(r[seen], c[seen])
    unseen = (r[:-1] == 0) & (c[:-1] > 0)
    return CategoricalStats(
        reference_rows=n,
        current_rows=m,
        reference_missing=ref_missing,
        current_missing=cur_missing,
        psi=float(psi(r, c)),
        jensen_shannon=_jensen_shannon(r, c),
        chi_square=chi2,
        chi_square_pvalue=pvalue,
        cramers_v=cramers_v,
        categories=len(names),
        unseen_categories=int(unseen.sum()),
        unseen_share=float(c[:-1][unseen].sum() / m),
        histogram=_histogram(names, r[:-1], c[:-1]),
    )


def _chi_square(r: NDArray[np.int64], c: NDArray[np.int64]) -> tuple[float, float, float]:
    """Statistic, p-value and Cramér's V of the 2 x K table ``[r, c]`` (no empty column)."""
    import numpy as np
    from scipy.stats import chi2

    if len(r) < 2:
        return 0.0, 1.0, 0.0
    observed = np.stack([r, c]).astype(np.float64)
    total = observed.sum()
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0) / total
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    pvalue = float(chi2.sf(statistic, len(r) - 1))
    return statistic, pvalue, float(np.sqrt(statistic / total))


def _jensen_shannon(r: NDArray[np.int64], c: NDArray[np.int64]) -> float:
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(r, c, base=2))


def _histogram(names: list[str], r: NDArray[np.int64], c: NDArray[np.int64]) -> Histogram:
    shown = PLOT_CATEGORIES if len(names) <= PLOT_CATEGORIES else PLOT_CATEGORIES - 1
    labels = names[:shown]
    ref, cur = [int(x) for x in r[:shown]], [int(x) for x in c[:shown]]
    if len(names) > shown:
        labels.append("(other)")
        ref.append(int(r[shown:].sum()))
        cur.append(int(c[shown:].sum()))
    return Histogram(reference=tuple(ref), current=tuple(cur), labels=tuple(labels))
