"""What a drift computation found: per column and for the whole dataset, as frozen values.

Statistics that cannot be computed (a side with no values) are None rather than NaN, so a
report survives :meth:`DriftReport.to_json` and :meth:`DriftReport.from_json` unchanged and
its JSON is standard (no ``NaN`` tokens).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

__all__ = ["ColumnDrift", "ColumnKind", "DriftReport", "Histogram"]

ColumnKind = Literal["numeric", "categorical"]
"""How a column is compared: as numbers (distributions) or as categories (frequencies)."""


@dataclass(frozen=True)
class Histogram:
    """Counts of the reference and of the current window in the same bins, for the plots.

    Numeric columns have equal-width bins over both sides' 0.5 %-99.5 % range: ``edges`` holds
    one more value than the counts, and values beyond the ends are counted in the end bins.
    Categorical columns have one bin per frequent category, named in ``labels`` (the rest are
    summed into ``"(other)"``). Missing values are left out (see :class:`ColumnDrift`).
    """

    reference: tuple[int, ...]
    current: tuple[int, ...]
    edges: tuple[float, ...] = ()
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColumnDrift:
    """The drift of one column.

    Attributes:
        name: The column's name in the reference (``x`` for the prediction log's ``in_x``).
        kind: ``numeric`` or ``categorical``.
        method: The statistic that decides (a :class:`conveyor.spec.DriftMethod` value).
        value: That statistic's value; None when a side has no non-missing value.
        threshold: Above this value the column counts as drifted.
        drifted: ``value > threshold``; with no value, True when exactly one side has values.
        weight: The column's weight in the dataset verdict (1, or its feature importance).
        reference_rows: Rows compared on the reference side (after sampling).
        current_rows: Rows compared on the current side.
        reference_missing: Missing values (null, NaN, infinite) among ``reference_rows``.
        current_missing: Missing values among ``current_rows``.
        statistics: Every statistic computed, by name. Numeric: ``psi``, ``jensen_shannon``,
            ``ks``, ``ks_pvalue``, ``wasserstein`` (normalised), ``wasserstein_raw``,
            ``reference_std``. Categorical: ``psi``, ``jensen_shannon``, ``chi_square``,
            ``chi_square_pvalue``, ``cramers_v``, ``categories``, ``unseen_categories``,
            ``unseen_share``.
        histogram: Counts for the plots.
        current_name: The column's name on the current side, when it differs.
    """

    name: str
    kind: ColumnKind
    method: str
    value: float | None
    threshold: float
    drifted: bool
    weight: float
    reference_rows: int
    current_rows: int
    reference_missing: int
    current_missing: int
    statistics: Mapping[str, float | None]
    histogram: Histogram
    current_name: str | None = None

    @property
    def reference_missing_rate(self) -> float:
        """Share of missing values in the reference."""
        return self.reference_missing / self.reference_rows if self.reference_rows else 0.0

    @property
    def current_missing_rate(self) -> float:
        """Share of missing values in the current window."""
        return self.current_missing / self.current_rows if self.current_rows else 0.0

    @property
    def missing_change(self) -> float:
        """Current minus reference missing-value rate (0.05 = five points more missing)."""
        return self.current_missing_rate - self.reference_missing_rate

    def to_json(self) -> dict[str, Any]:
        """The column as plain JSON types."""
        return {
            "name": self.name,
            "current_name": self.current_name,
            "kind": self.kind,
            "method": self.method,
            "value": self.value,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "weight": self.weight,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "reference_missing": self.reference_missing,
            "current_missing": self.current_missing,
            "missing_change": self.missing_change,
            "statistics": dict(self.statistics),
            "histogram": {
                "reference": list(self.histogram.reference),
                "current": list(self.histogram.current),
                "edges": list(self.histogram.edges),
                "labels": list(self.histogram.labels),
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ColumnDrift:
        """The column back from :meth:`to_json`."""
        histogram = data["histogram"]
        return cls(
            name=data["name"],
            current_name=data.get("current_name"),
            kind=data["kind"],
            method=data["method"],
            value=data["value"],
            threshold=data["threshold"],
            drifted=data["drifted"],
            weight=data["weight"],
            reference_rows=data["reference_rows"],
            current_rows=data["current_rows"],
            reference_missing=data["reference_missing"],
            current_missing=data["current_missing"],
            statistics=dict(data["statistics"]),
            histogram=Histogram(
                reference=tuple(histogram["reference"]),
                current=tuple(histogram["current"]),
                edges=tuple(histogram["edges"]),
                labels=tuple(histogram["labels"]),
            ),
        )


@dataclass(frozen=True)
class DriftReport:
    """Drift of every compared column and the dataset verdict.

    Attributes:
        columns: One entry per compared column, in the order they were given or found.
        drifted_share: Weighted share of drifted columns (weights: :attr:`ColumnDrift.weight`).
        dataset_share: The spec's threshold for that share.
        drifted: ``drifted_share >= dataset_share``.
        reference_rows: Rows compared on the reference side (after sampling).
        current_rows: Rows compared on the current side.
        reference_total_rows: Rows the reference had before sampling.
        current_total_rows: Rows the current window had before sampling.
        seed: Seed of the sample (the same inputs and seed give the same report).
        created_at: When the report was computed (UTC).
        skipped: Columns left out when the columns were inferred, with the reason.
    """

    columns: tuple[ColumnDrift, ...]
    drifted_share: float
    dataset_share: float
    drifted: bool
    reference_rows: int
    current_rows: int
    reference_total_rows: int
    current_total_rows: int
    seed: int
    created_at: datetime
    skipped: Mapping[str, str] = field(default_factory=dict)

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        """Names of the drifted columns."""
        return tuple(c.name for c in self.columns if c.drifted)

    def column(self, name: str) -> ColumnDrift:
        """The entry of one column.

        Raises:
            KeyError: the report has no such column.
        """
        for column in self.columns:
            if column.name == name:
                return column
        known = ", ".join(c.name for c in self.columns)
        raise KeyError(f"the report has no column {name!r}; it has {known}")

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON types (``json.dumps`` needs no extra options)."""
        return {
            "created_at": self.created_at.isoformat(),
            "drifted": self.drifted,
            "drifted_share": self.drifted_share,
            "dataset_share": self.dataset_share,
            "drifted_columns": list(self.drifted_columns),
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "reference_total_rows": self.reference_total_rows,
            "current_total_rows": self.current_total_rows,
            "seed": self.seed,
            "columns": [c.to_json() for c in self.columns],
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DriftReport:
        """The report back from :meth:`to_json` (e.g. a stored one, for the history plot)."""
        return cls(
            columns=tuple(ColumnDrift.from_json(c) for c in data["columns"]),
            drifted_share=data["drifted_share"],
            dataset_share=data["dataset_share"],
            drifted=data["drifted"],
            reference_rows=data["reference_rows"],
            current_rows=data["current_rows"],
            reference_total_rows=data["reference_total_rows"],
            current_total_rows=data["current_total_rows"],
            seed=data["seed"],
            created_at=datetime.fromisoformat(data["created_at"]),
            skipped=dict(data.get("skipped", {})),
        )

    def render_html(
        self, path: str | Path, *, history: Sequence[DriftReport] = (), top: int = 20
    ) -> Path:
        """Write the report as one self-contained HTML page and return its path.

        The page holds a summary, a table of every column, reference-vs-current histograms of
        the ``top`` columns (drifted first, then by value over threshold) and, given earlier
        reports in ``history``, the drift scores over time. Plots are inline PNG images.
        """
        from conveyor.monitor._html import render_html

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_html(self, history=history, top=top), encoding="utf-8")
        return target
