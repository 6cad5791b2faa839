"""``compute_drift``: compare a window of data with a reference, column by column.

Numeric columns are read a group at a time (about :data:`GROUP_BYTES` per side) as a
``(columns, rows)`` float32 array per side and compared by
:func:`~conveyor.monitor._numeric.numeric_statistics`, while a background thread reads the
next group (DuckDB and numpy both release the GIL); categorical columns are counted by DuckDB
(or from the sampled rows) and compared by
:func:`~conveyor.monitor._categorical.categorical_statistics`. Peak memory is about two
groups of columns plus one column's merge buffers (~50 bytes a row) per thread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from conveyor.data._duckdb import connect
from conveyor.errors import SourceError
from conveyor.monitor._categorical import CategoricalStats, categorical_statistics
from conveyor.monitor._columns import Column, plan_columns
from conveyor.monitor._inputs import DriftInput, Source, sample_positions
from conveyor.monitor._numeric import NumericStats, numeric_statistics
from conveyor.monitor._report import ColumnDrift, ColumnKind, DriftReport
from conveyor.spec import DriftSpec

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["GROUP_BYTES", "compute_drift"]

GROUP_BYTES: Final = 64 * 2**20
"""Numeric values read per pass and side: 16 columns of 1M float32 rows (at most 64 columns)."""

_NUMERIC_VALUE: Final = {
    "psi": "psi",
    "ks": "ks",
    "jensen_shannon": "jensen_shannon",
    "wasserstein": "wasserstein",
}
_CATEGORICAL_VALUE: Final = {
    "psi": "psi",
    "chi_square": "cramers_v",
    "jensen_shannon": "jensen_shannon",
}


def compute_drift(
    reference: DriftInput,
    current: DriftInput,
    *,
    columns: Mapping[str, ColumnKind] | Sequence[str] | None = None,
    spec: DriftSpec | None = None,
    importance: Mapping[str, float] | None = None,
    max_rows: int | None = None,
    seed: int | None = None,
    current_prefix: str = "",
    rename: Mapping[str, str] | None = None,
    workers: int | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference``, per column and for the whole dataset.

    Numeric columns get PSI on the reference's quantile bins (a bin of their own for missing
    values), the Kolmogorov-Smirnov statistic and p-value, the Wasserstein-1 distance divided
    by the reference's standard deviation, and the Jensen-Shannon distance on the PSI bins.
    Categorical columns get the chi-square test with Cramér's V, the Jensen-Shannon distance,
    PSI over the categories, and the count and share of categories the reference never had.
    Every column gets its missing-value counts. The spec's method for the column's kind
    decides, against its threshold (per column if the spec gives one); the dataset drifts
    when the weighted share of drifted columns reaches ``spec.dataset_share``. Numeric
    values are compared as float32. See the modules ``_numeric`` and ``_categorical`` for the
    exact definitions.

    Args:
        reference: The data the model was trained on (or any baseline): an Arrow table, or
            Parquet files (path, folder, glob, or a list of those; Hive partitions are read).
        current: The data to check, e.g. a window of the prediction log.
        columns: Columns to compare, by their reference name: a mapping to
            ``"numeric"``/``"categorical"``, or a list (kinds read from the types). Default:
            ``spec.columns``, else every column both sides have (see ``_columns``).
        spec: Methods, thresholds, bins and sampling (default: ``DriftSpec()``).
        importance: Feature importance by column name; weights the dataset verdict.
            Compared columns it does not name (e.g. the prediction) get the mean weight.
        max_rows: Rows drawn at random from a side that has more (default:
            ``spec.max_rows``).
        seed: Seed of that sample (default: ``spec.seed``).
        current_prefix: Prefix of the current side's columns: ``"in_"`` for a prediction log
            (its ``out_`` columns are found by their own names).
        rename: Current-side name of a reference column, where the prefix does not fit.
        workers: Threads for the numeric columns (default: the usable cores, at most 4).

    Raises:
        SourceError: a side cannot be read, has no rows, or lacks a named column.
        ValueError: ``importance`` has a negative or non-finite weight, or none above zero.
    """
    spec = spec or DriftSpec()
    limit = max_rows if max_rows is not None else spec.max_rows
    seed = spec.seed if seed is None else seed
    created_at = datetime.now(UTC)
    con = connect()
    try:
        ref = Source(con, reference, "reference")
        cur = Source(con, current, "current")
        plan, skipped = plan_columns(
            ref.types,
            cur.types,
            columns=columns if columns is not None else spec.columns,
            current_prefix=current_prefix,
            rename=rename or {},
            list_size=ref.list_size,
        )
        weights = _weights(plan, importance)
        totals = []
        for side in (ref, cur):
            total = side.count()
            if total == 0:
                raise SourceError(f"the {side.alias} data ({side.description}) has no rows")
            totals.append(total)
        ref_positions = sample_positions(totals[0], limit, seed, 0)
        cur_positions = sample_positions(totals[1], limit, seed, 1)
        n = totals[0] if ref_positions is None else len(ref_positions)
        m = totals[1] if cur_positions is None else len(cur_positions)
        stats: dict[str, NumericStats | CategoricalStats] = {}
        numeric = [c for c in plan if c.kind == "numeric"]
        stats.update(
            _compare_numeric(
                numeric, (ref, ref_positions, n), (cur, cur_positions, m), spec, workers
            )
        )
        for column in plan:
            if column.kind == "categorical":
                stats[column.name] = categorical_statistics(
                    ref.read_categorical(column.reference, ref_positions),
                    cur.read_categorical(column.current, cur_positions),
                )
    finally:
        con.close()
    entries = tuple(_entry(c, stats[c.name], spec, weights[c.name]) for c in plan)
    share = sum(e.weight for e in entries if e.drifted) / sum(weights.values())
    return DriftReport(
        columns=entries,
        drifted_share=share,
        dataset_share=spec.dataset_share,
        drifted=share >= spec.dataset_share,
        reference_rows=n,
        current_rows=m,
        reference_total_rows=totals[0],
        current_total_rows=totals[1],
        seed=seed,
        created_at=created_at,
        skipped=skipped,
    )


_Side = tuple[Source, "NDArray[np.int64] | None", int]
"""A side's source, the positions of its sampled rows (None: all) and how many rows that is."""


def _compare_numeric(
    columns: list[Column], ref: _Side, cur: _Side, spec: DriftSpec, workers: int | None
) -> dict[str, NumericStats]:
    """Numeric columns a group at a time, the next group read while this one is compared."""
    size = max(1, min(64, GROUP_BYTES // (4 * max(ref[2], cur[2]))))
    groups = [columns[i : i + size] for i in range(0, len(columns), size)]

    def read(group: list[Column]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        return (
            ref[0].read_numeric([c.reference for c in group], ref[1], ref[2]),
            cur[0].read_numeric([c.current for c in group], cur[1], cur[2]),
        )

    stats: dict[str, NumericStats] = {}
    with ThreadPoolExecutor(max_workers=1) as reader:
        ahead = [reader.submit(read, groups[0])] if groups else []
        for i, group in enumerate(groups):
            ref_values, cur_values = ahead.pop().result()
            if i + 1 < len(groups):
                ahead.append(reader.submit(read, groups[i + 1]))
            found = numeric_statistics(ref_values, cur_values, spec.bins, workers)
            del ref_values, cur_values
            stats.update(zip([c.name for c in group], found, strict=True))
    return stats


def _weights(plan: list[Column], importance: Mapping[str, float] | None) -> dict[str, float]:
    if importance is None:
        return {c.name: 1.0 for c in plan}
    bad = {k: v for k, v in importance.items() if not (math.isfinite(v) and v >= 0)}
    if bad:
        raise ValueError(f"feature importance must be finite and >= 0, found {bad}")
    known = [float(importance[c.name]) for c in plan if c.name in importance]
    if sum(known) <= 0:
        raise ValueError(
            "the feature importance gives no compared column a weight above 0 (compared: "
            f"{', '.join(c.name for c in plan)}); pass importance by reference column name"
        )
    fill = sum(known) / len(known)
    return {c.name: float(importance.get(c.name, fill)) for c in plan}


def _entry(
    column: Column, stats: NumericStats | CategoricalStats, spec: DriftSpec, weight: float
) -> ColumnDrift:
    statistics: dict[str, float | None]
    if isinstance(stats, NumericStats):
        method: str = spec.methods.numeric
        statistics = {
            "psi": stats.psi,
            "jensen_shannon": stats.jensen_shannon,
            "ks": stats.ks,
            "ks_pvalue": stats.ks_pvalue,
            "wasserstein": stats.wasserstein,
            "wasserstein_raw": stats.wasserstein_raw,
            "reference_std": stats.reference_std,
        }
        value = statistics[_NUMERIC_VALUE[method]]
    else:
        method = spec.methods.categorical
        statistics = {
            "psi": stats.psi,
            "jensen_shannon": stats.jensen_shannon,
            "chi_square": stats.chi_square,
            "chi_square_pvalue": stats.chi_square_pvalue,
            "cramers_v": stats.cramers_v,
            "categories": stats.categories,
            "unseen_categories": stats.unseen_categories,
            "unseen_share": stats.unseen_share,
        }
        value = statistics[_CATEGORICAL_VALUE[method]]
    threshold = spec.threshold(column.name, method)
    ref_empty = stats.reference_missing == stats.reference_rows
    cur_empty = stats.current_missing == stats.current_rows
    return ColumnDrift(
        name=column.name,
        current_name=column.current_name if column.current_name != column.name else None,
        kind=column.kind,
        method=method,
        value=value,
        threshold=threshold,
        drifted=value > threshold if value is not None else ref_empty != cur_empty,
        weight=weight,
        reference_rows=stats.reference_rows,
        current_rows=stats.current_rows,
        reference_missing=stats.reference_missing,
        current_missing=stats.current_missing,
        statistics=statistics,
        histogram=stats.histogram,
    )
