"""Each drift statistic against scipy (or a plain re-implementation) on small data."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from conveyor.deploy import psi as reference_psi
from conveyor.monitor import compute_drift
from conveyor.spec import DriftSpec

NO_SAMPLING = DriftSpec(max_rows=None)


def _drift(ref: dict[str, object], cur: dict[str, object], **kwargs: object):
    return compute_drift(pa.table(ref), pa.table(cur), spec=NO_SAMPLING, **kwargs)


def _decile_psi(r: np.ndarray, c: np.ndarray, missing: tuple[int, int] = (0, 0)) -> float:
    """PSI as a user would write it: numpy's deciles of r as edges, plus a missing bin."""
    edges = np.unique(np.quantile(r, np.arange(1, 10) / 10).astype(np.float32))
    counts_r = np.bincount(np.searchsorted(edges, r, side="right"), minlength=len(edges) + 1)
    counts_c = np.bincount(np.searchsorted(edges, c, side="right"), minlength=len(edges) + 1)
    return reference_psi([*counts_r, missing[0]], [*counts_c, missing[1]])


@pytest.mark.parametrize(
    ("n", "m", "shift", "scale"),
    [(400, 300, 0.0, 1.0), (1000, 700, 0.4, 1.0), (250, 900, 0.0, 2.0), (50, 5000, 1.5, 0.5)],
)
def test_numeric_statistics_match_scipy(n: int, m: int, shift: float, scale: float) -> None:
    rng = np.random.default_rng(n + m)
    r = rng.normal(size=n).astype(np.float32)
    c = (rng.normal(size=m) * scale + shift).astype(np.float32)

    stats = _drift({"x": r}, {"x": c}).column("x").statistics

    expected = ks_2samp(r, c, method="asymp")
    assert stats["ks"] == pytest.approx(expected.statistic, abs=1e-12)
    assert stats["ks_pvalue"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    raw = wasserstein_distance(r, c)
    assert stats["wasserstein_raw"] == pytest.approx(raw, rel=1e-9)
    assert stats["wasserstein"] == pytest.approx(raw / np.std(r.astype(np.float64)), rel=1e-9)
    assert stats["reference_std"] == pytest.approx(np.std(r.astype(np.float64)), rel=1e-9)
    assert stats["psi"] == pytest.approx(_decile_psi(r, c), rel=1e-9)


def test_ties_of_discrete_columns_are_handled_as_scipy_does() -> None:
    rng = np.random.default_rng(3)
    r = rng.poisson(3.0, 2000).astype(np.float32)
    c = rng.poisson(3.4, 1500).astype(np.float32)

    stats = _drift({"k": r}, {"k": c}).column("k").statistics

    expected = ks_2samp(r, c, method="asymp")
    assert stats["ks"] == pytest.approx(expected.statistic, abs=1e-12)
    assert stats["wasserstein_raw"] == pytest.approx(wasserstein_distance(r, c), rel=1e-9)
    # tied deciles merge bins; the PSI is still the one over numpy's unique deciles
    assert stats["psi"] == pytest.approx(_decile_psi(r, c), rel=1e-9)


def test_numeric_jensen_shannon_uses_the_psi_bins_and_the_missing_bin() -> None:
    rng = np.random.default_rng(5)
    r = rng.uniform(0, 1, 1000).astype(np.float32)
    c = rng.uniform(0.2, 1.2, 800).astype(np.float32)
    c_with_missing = np.concatenate([c, np.full(200, np.nan, dtype=np.float32)])

    stats = _drift({"u": r}, {"u": c_with_missing}).column("u").statistics

    edges = np.unique(np.quantile(r, np.arange(1, 10) / 10).astype(np.float32))
    counts_r = np.bincount(np.searchsorted(edges, r, side="right"), minlength=len(edges) + 1)
    counts_c = np.bincount(np.searchsorted(edges, c, side="right"), minlength=len(edges) + 1)
    assert stats["jensen_shannon"] == pytest.approx(
        jensenshannon([*counts_r, 0], [*counts_c, 200], base=2), rel=1e-9
    )
    assert stats["psi"] == pytest.approx(_decile_psi(r, c, missing=(0, 200)), rel=1e-9)
    # KS and Wasserstein compare the values that are there
    assert stats["ks"] == pytest.approx(ks_2samp(r, c).statistic, abs=1e-12)


def test_missing_values_are_null_nan_and_infinite_and_counted_per_side() -> None:
    ref = pa.array([1.0, 2.0, None, 4.0, math.nan, 6.0, 7.0, 8.0])
    cur = pa.array([1.0, math.inf, -math.inf, None, 5.0, None, 7.0, None, 9.0, 10.0])

    column = compute_drift(pa.table({"x": ref}), pa.table({"x": cur})).column("x")

    assert (column.reference_rows, column.reference_missing) == (8, 2)
    assert (column.current_rows, column.current_missing) == (10, 5)
    assert column.reference_missing_rate == pytest.approx(0.25)
    assert column.current_missing_rate == pytest.approx(0.5)
    assert column.missing_change == pytest.approx(0.25)
    finite_r = np.array([1, 2, 4, 6, 7, 8], dtype=np.float32)
    finite_c = np.array([1, 5, 7, 9, 10], dtype=np.float32)
    assert column.statistics["ks"] == pytest.approx(ks_2samp(finite_r, finite_c).statistic)


def test_a_column_that_arrives_empty_drifts_without_a_distance() -> None:
    report = compute_drift(
        pa.table({"x": pa.array(np.arange(100, dtype=np.float64))}),
        pa.table({"x": pa.array([None] * 50, pa.float64())}),
        spec=DriftSpec(methods={"numeric": "ks"}),
    )
    column = report.column("x")
    assert column.value is None
    assert column.statistics["wasserstein"] is None
    assert column.drifted
    assert column.statistics["psi"] > 5  # all the mass moved to the missing bin


def test_categorical_statistics_match_scipy() -> None:
    rng = np.random.default_rng(11)
    levels = np.array(["a", "b", "c", "d"])
    r = levels[rng.choice(4, 3000, p=[0.4, 0.3, 0.2, 0.1])]
    c = levels[rng.choice(4, 2000, p=[0.3, 0.3, 0.25, 0.15])]

    stats = _drift({"g": r.tolist()}, {"g": c.tolist()}).column("g").statistics

    table = np.array([[np.sum(r == v) for v in levels], [np.sum(c == v) for v in levels]])
    chi2, p, _, _ = chi2_contingency(table, correction=False)
    assert stats["chi_square"] == pytest.approx(chi2, rel=1e-9)
    assert stats["chi_square_pvalue"] == pytest.approx(p, rel=1e-9)
    assert stats["cramers_v"] == pytest.approx(math.sqrt(chi2 / table.sum()), rel=1e-9)
    assert stats["jensen_shannon"] == pytest.approx(
        jensenshannon(table[0], table[1], base=2), rel=1e-9
    )
    assert stats["psi"] == pytest.approx(reference_psi(table[0], table[1]), rel=1e-9)
    assert stats["categories"] == 4
    assert stats["unseen_categories"] == 0


def test_unseen_categories_are_counted_with_their_share() -> None:
    ref = {"city": ["paris", "rome", "oslo", "rome"] * 50}
    cur = {"city": ["paris", "rome", "lima", "quito", "lima"] * 40}

    column = _drift(ref, cur).column("city")

    assert column.statistics["unseen_categories"] == 2
    assert column.statistics["unseen_share"] == pytest.approx(120 / 200)
    assert column.statistics["categories"] == 5
    assert set(column.histogram.labels) == {"paris", "rome", "oslo", "lima", "quito"}
    assert column.drifted


def test_missing_categories_count_as_a_category_of_their_own() -> None:
    ref = {"c": ["x", "y"] * 100}
    cur = {"c": ["x", "y", None, None] * 50}

    column = _drift(ref, cur).column("c")

    assert (column.reference_missing, column.current_missing) == (0, 100)
    table = np.array([[100, 100, 0], [50, 50, 100]])
    chi2, p, _, _ = chi2_contingency(table, correction=False)
    assert column.statistics["chi_square"] == pytest.approx(chi2)
    assert column.statistics["chi_square_pvalue"] == pytest.approx(p)
    assert column.statistics["unseen_categories"] == 0
