"""A/B statistics checked against scipy, hand computations and simulations with fixed seeds."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from conveyor.deploy import (
    SampleSummary,
    psi,
    required_sample_size,
    required_sample_size_means,
    sequential_test,
    two_proportion_test,
    welch_test,
)


def test_two_proportion_test_matches_a_hand_computation() -> None:
    result = two_proportion_test(100, 1000, 130, 1200)
    p_a, p_b = 100 / 1000, 130 / 1200
    pooled = 230 / 2200
    z = (p_b - p_a) / math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 1200))
    se = math.sqrt(p_a * (1 - p_a) / 1000 + p_b * (1 - p_b) / 1200)
    assert result.method == "two_proportion"
    assert (result.n_a, result.n_b) == (1000, 1200)
    assert result.estimate_a == pytest.approx(p_a) and result.estimate_b == pytest.approx(p_b)
    assert result.effect == pytest.approx(p_b - p_a)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    half = stats.norm.ppf(0.975) * se
    assert (result.ci_low, result.ci_high) == pytest.approx((p_b - p_a - half, p_b - p_a + half))
    assert not result.significant and result.decision == "no_difference"


def test_two_proportion_p_value_equals_the_uncorrected_chi_square_test() -> None:
    result = two_proportion_test(412, 2000, 475, 2000)
    table = [[412, 2000 - 412], [475, 2000 - 475]]
    chi2 = stats.chi2_contingency(table, correction=False)
    assert result.p_value == pytest.approx(chi2.pvalue, rel=1e-9)
    assert result.significant and result.decision == "challenger_better"


@pytest.mark.parametrize(
    ("higher_is_better", "decision"),
    [(True, "challenger_better"), (False, "champion_better")],
)
def test_the_decision_reads_the_effect_in_the_outcomes_direction(
    higher_is_better: bool, decision: str
) -> None:
    result = two_proportion_test(100, 1000, 200, 1000, higher_is_better=higher_is_better)
    assert result.decision == decision
    flipped = two_proportion_test(200, 1000, 100, 1000, higher_is_better=higher_is_better)
    assert flipped.decision != decision and flipped.significant


def test_two_proportion_with_identical_constant_outcomes_is_no_difference() -> None:
    result = two_proportion_test(0, 50, 0, 60)
    assert result.p_value == 1.0 and result.decision == "no_difference"


@pytest.mark.parametrize(
    "args", [(5, 0, 1, 10), (11, 10, 1, 10), (-1, 10, 1, 10)], ids=["n0", "over", "negative"]
)
def test_two_proportion_refuses_impossible_counts(args: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        two_proportion_test(*args)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(1.0, 2.0, 200), rng.normal(1.3, 3.0, 150)
    result = welch_test(a, b)
    reference = stats.ttest_ind(b, a, equal_var=False)  # b - a, the challenger's effect
    interval = reference.confidence_interval(0.95)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.effect == pytest.approx(b.mean() - a.mean())
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high))
    assert result.significant == (reference.pvalue <= 0.05)
    summaries = welch_test(
        SampleSummary.from_sums(len(a), a.sum(), (a**2).sum()),
        SampleSummary.of(b.tolist()),
    )
    assert summaries.p_value == pytest.approx(result.p_value, rel=1e-6)


def test_welch_decides_lower_is_better_outcomes() -> None:
    rng = np.random.default_rng(5)
    champion_errors, challenger_errors = rng.exponential(1.0, 500), rng.exponential(0.7, 500)
    result = welch_test(champion_errors, challenger_errors, higher_is_better=False)
    assert result.effect < 0 and result.significant
    assert result.decision == "challenger_better"


def test_welch_with_constant_samples_and_too_few_values() -> None:
    assert welch_test([1.0, 1.0], [1.0, 1.0]).p_value == 1.0
    exact = welch_test([1.0, 1.0], [2.0, 2.0])
    assert exact.p_value == 0.0 and exact.decision == "challenger_better"
    with pytest.raises(ValueError, match="2 or more values per side"):
        welch_test([1.0], [1.0, 2.0])


def test_sample_summaries_agree() -> None:
    values = [3.0, 5.0, 4.0, 10.0, 8.0]
    direct = SampleSummary.of(values)
    sums = SampleSummary.from_sums(5, sum(values), sum(v * v for v in values))
    assert direct.mean == pytest.approx(np.mean(values))
    assert direct.variance == pytest.approx(np.var(values, ddof=1))
    assert (sums.n, sums.mean, sums.variance) == pytest.approx(
        (direct.n, direct.mean, direct.variance)
    )
    assert SampleSummary.of_proportion(30, 100).variance == pytest.approx(0.3 * 0.7)
    assert SampleSummary.of([]).n == 0 and math.isnan(SampleSummary.from_sums(1, 2, 4).variance)


def test_required_sample_size_matches_the_textbook_formula() -> None:
    z_a, z_b = stats.norm.ppf(0.975), stats.norm.ppf(0.8)
    p1, p2 = 0.10, 0.12
    by_hand = (
        z_a * math.sqrt(2 * 0.11 * 0.89) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    ) ** 2 / 0.02**2
    assert required_sample_size(0.10, 0.02) == math.ceil(by_hand) == 3841
    # near 1 the change is taken downwards
    assert required_sample_size(0.99, 0.02) == required_sample_size(0.97, 0.02)
    assert required_sample_size_means(1.0, 0.2) == math.ceil(2 * ((z_a + z_b) / 0.2) ** 2)


def test_the_planned_sample_size_gives_the_planned_power() -> None:
    n = required_sample_size(0.10, 0.02, alpha=0.05, power=0.8)
    rng = np.random.default_rng(11)
    a, b = rng.binomial(n, 0.10, 2000), rng.binomial(n, 0.12, 2000)
    power = np.mean(
        [two_proportion_test(x, n, y, n).significant for x, y in zip(a, b, strict=True)]
    )
    assert 0.77 < power < 0.83


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: required_sample_size(0.0, 0.02), "baseline_rate"),
        (lambda: required_sample_size(0.5, 0.0), "minimum_detectable_effect"),
        (lambda: required_sample_size(0.5, 0.6), "leaves the range"),
        (lambda: required_sample_size(0.5, 0.1, power=1.0), "power"),
        (lambda: required_sample_size(0.5, 0.1, alpha=0.0), "alpha"),
        (lambda: required_sample_size_means(-1.0, 0.1), "std >= 0"),
    ],
)
def test_sample_size_arguments_are_checked(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def _peeks(
    rng: np.random.Generator, sims: int, peeks: int, block: int, rates: tuple[float, float]
) -> tuple[Any, Any]:
    """Cumulative successes of both arms at each look: arrays of shape (sims, peeks)."""
    first, second = (np.cumsum(rng.binomial(block, r, (sims, peeks)), axis=1) for r in rates)
    return first, second


def test_msprt_keeps_its_false_positive_rate_under_peeking_where_a_naive_z_test_does_not() -> None:
    sims, peeks, block, alpha = 2000, 50, 200, 0.05
    a, b = _peeks(np.random.default_rng(2024), sims, peeks, block, (0.2, 0.2))
    sequential_rejects = naive_rejects = 0
    for sim in range(sims):
        sequential_hit = naive_hit = False
        for look in range(peeks):
            n = block * (look + 1)
            x, y = int(a[sim, look]), int(b[sim, look])
            if not sequential_hit:
                result = sequential_test(
                    SampleSummary.of_proportion(x, n),
                    SampleSummary.of_proportion(y, n),
                    tau=0.02,
                    alpha=alpha,
                )
                sequential_hit = result.significant
            if not naive_hit:
                naive_hit = two_proportion_test(x, n, y, n, alpha=alpha).significant
        sequential_rejects += sequential_hit
        naive_rejects += naive_hit
    assert sequential_rejects / sims <= alpha + 0.01
    assert naive_rejects / sims > 2 * alpha  # peeking inflates the naive test's error


def test_msprt_keeps_its_false_positive_rate_for_means() -> None:
    rng = np.random.default_rng(7)
    sims, peeks, block = 1000, 20, 100
    data = rng.normal(5.0, 2.0, (2, sims, peeks * block))
    rejects = 0
    for sim in range(sims):
        for look in range(1, peeks + 1):
            n = look * block
            a, b = data[0, sim, :n], data[1, sim, :n]
            summary_a = SampleSummary(n, float(a.mean()), float(a.var(ddof=1)))
            summary_b = SampleSummary(n, float(b.mean()), float(b.var(ddof=1)))
            if sequential_test(summary_a, summary_b, tau=0.3).significant:
                rejects += 1
                break
    assert rejects / sims <= 0.05 + 0.015


def test_msprt_detects_a_real_effect_and_stops_early() -> None:
    sims, peeks, block = 200, 50, 200
    a, b = _peeks(np.random.default_rng(3), sims, peeks, block, (0.20, 0.24))
    stopped_at = []
    for sim in range(sims):
        for look in range(peeks):
            n = block * (look + 1)
            result = sequential_test(
                SampleSummary.of_proportion(int(a[sim, look]), n),
                SampleSummary.of_proportion(int(b[sim, look]), n),
                tau=0.02,
            )
            if result.significant:
                assert result.decision == "challenger_better"
                stopped_at.append(n)
                break
    assert len(stopped_at) >= 0.95 * sims
    assert np.median(stopped_at) < block * peeks / 2


def test_msprt_p_value_and_interval_follow_the_mixture_likelihood_ratio() -> None:
    a, b = SampleSummary(1000, 0.10, 0.09), SampleSummary(1000, 0.14, 0.1204)
    tau, alpha = 0.02, 0.05
    result = sequential_test(a, b, tau=tau, alpha=alpha, horizon=5000)
    s2, t2, effect = 0.09 / 1000 + 0.1204 / 1000, tau**2, 0.04
    ratio = math.sqrt(s2 / (s2 + t2)) * math.exp(t2 * effect**2 / (2 * s2 * (s2 + t2)))
    assert result.p_value == pytest.approx(min(1.0, 1 / ratio))
    assert result.ci_low < effect < result.ci_high

    # the interval's ends are exactly where the test would start rejecting
    def p_at(theta: float) -> float:
        shifted = SampleSummary(b.n, b.mean - theta, b.variance)
        return sequential_test(a, shifted, tau=tau, alpha=alpha).p_value

    assert p_at(result.ci_low) == pytest.approx(alpha) == p_at(result.ci_high)


def test_msprt_continues_until_its_horizon_then_finds_no_difference() -> None:
    a, b = SampleSummary(400, 0.5, 0.25), SampleSummary(400, 0.51, 0.25)
    assert sequential_test(a, b, tau=0.02, horizon=1000).decision == "continue"
    assert sequential_test(a, b, tau=0.02).decision == "continue"
    assert sequential_test(a, b, tau=0.02, horizon=400).decision == "no_difference"
    tiny = sequential_test(SampleSummary(1, 0.0, math.nan), b, tau=0.02)
    assert tiny.p_value == 1.0 and tiny.decision == "continue"
    with pytest.raises(ValueError, match="tau must be positive"):
        sequential_test(a, b, tau=0.0)


def test_psi_matches_a_hand_computation_and_survives_empty_bins() -> None:
    expected, actual = [10, 20, 30, 40], [40, 30, 20, 10]
    e, a = np.array(expected) / 100, np.array(actual) / 100
    assert psi(expected, actual) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    assert psi(expected, expected) == 0.0
    assert psi(expected, [5, 10, 15, 20]) == pytest.approx(0.0)  # shares, not counts
    with_gap = psi([50, 50, 0], [40, 40, 20])
    assert math.isfinite(with_gap) and with_gap > 1
    assert psi([50, 50, 0], [40, 40, 20], eps=1e-2) < with_gap


@pytest.mark.parametrize(
    ("expected", "actual", "message"),
    [([1, 2], [1, 2, 3], "share their bins"), ([0, 0], [1, 2], "at least one count")],
)
def test_psi_refuses_histograms_it_cannot_compare(
    expected: list[int], actual: list[int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        psi(expected, actual)
