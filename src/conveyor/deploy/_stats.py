"""Statistics of an A/B rollout: fixed-sample and sequential tests, sample sizes, and PSI.

Side ``a`` is the champion and side ``b`` the challenger everywhere; an effect is
``estimate_b - estimate_a``. Every test returns a :class:`TestResult` whose ``decision`` already
reads the effect in the outcome's direction (``higher_is_better``).

The sequential test is the mixture sequential probability ratio test (mSPRT) of Johari, Pekelis
and Walsh, "Always valid inference: continuous monitoring of A/B tests" (2017/2022), with a normal
approximation of the difference of means and a ``N(0, tau^2)`` mixture over the effect. Its
p-value is *always valid*: under no difference, the chance that it ever drops to ``alpha`` at any
of any number of looks is at most ``alpha`` (Ville's inequality), so the controller may run it at
every check. The p-value here is computed from the current totals only; a caller that keeps the
history may report the running minimum, which is equally valid.

Only the standard library runs at import time; scipy is imported by :func:`welch_test` alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

__all__ = [
    "SampleSummary",
    "TestResult",
    "Verdict",
    "psi",
    "required_sample_size",
    "required_sample_size_means",
    "sequential_test",
    "two_proportion_test",
    "welch_test",
]

Verdict = Literal["challenger_better", "champion_better", "no_difference", "continue"]
"""What a test concludes; ``continue`` only from a sequential test before its horizon."""

_NORMAL = NormalDist()


@dataclass(frozen=True)
class SampleSummary:
    """Count, mean and sample variance (``n - 1`` denominator) of one version's outcomes."""

    n: int
    mean: float
    variance: float

    @classmethod
    def of(cls, values: Iterable[float]) -> SampleSummary:
        """Summarise raw outcomes (two passes, so large values do not lose precision)."""
        data = [float(value) for value in values]
        n = len(data)
        if n == 0:
            return cls(0, math.nan, math.nan)
        mean = math.fsum(data) / n
        variance = math.fsum((x - mean) ** 2 for x in data) / (n - 1) if n > 1 else math.nan
        return cls(n, mean, variance)

    @classmethod
    def from_sums(cls, n: int, total: float, total_sq: float) -> SampleSummary:
        """Summarise from additive aggregates (what every replica can write and the store sum).

        Subtracting squares loses precision when the variance is tiny against the mean; outcomes
        such as 0/1 flags or errors of a few units are far from that.
        """
        if n <= 0:
            return cls(0, math.nan, math.nan)
        mean = total / n
        variance = max(total_sq - n * mean * mean, 0.0) / (n - 1) if n > 1 else math.nan
        return cls(n, mean, variance)

    @classmethod
    def of_proportion(cls, successes: int, n: int) -> SampleSummary:
        """Summarise ``successes`` out of ``n`` 0/1 outcomes (Bernoulli variance ``p(1-p)``)."""
        _check_counts(successes, n)
        rate = successes / n
        return cls(n, rate, rate * (1 - rate))


@dataclass(frozen=True)
class TestResult:
    """The outcome of comparing champion (``a``) and challenger (``b``).

    ``ci_low``/``ci_high`` bound ``effect`` at confidence ``1 - alpha`` (always valid for the
    sequential test); ``significant`` is ``p_value <= alpha``.
    """

    __test__ = False  # not a pytest test class

    method: str
    n_a: int
    n_b: int
    estimate_a: float
    estimate_b: float
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool
    decision: Verdict


def _check_counts(successes: int, n: int) -> None:
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"expected 0 <= successes <= n and n > 0, found {successes} of {n}")


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, found {alpha}")


def _verdict(significant: bool, effect: float, higher_is_better: bool, final: bool) -> Verdict:
    if significant and effect != 0:
        return "challenger_better" if (effect > 0) == higher_is_better else "champion_better"
    return "no_difference" if final else "continue"


def _result(
    method: str,
    a: SampleSummary,
    b: SampleSummary,
    half_width: float,
    p_value: float,
    *,
    alpha: float,
    higher_is_better: bool,
    final: bool = True,
) -> TestResult:
    effect = b.mean - a.mean
    significant = p_value <= alpha
    return TestResult(
        method=method,
        n_a=a.n,
        n_b=b.n,
        estimate_a=a.mean,
        estimate_b=b.mean,
        effect=effect,
        ci_low=effect - half_width,
        ci_high=effect + half_width,
        p_value=p_value,
        significant=significant,
        decision=_verdict(significant, effect, higher_is_better, final),
    )


def two_proportion_test(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    *,
    alpha: float = 0.05,
    higher_is_better: bool = True,
) -> TestResult:
    """Two-sided z test of a difference of two proportions.

    The p-value uses the pooled standard error (the null hypothesis says both rates are equal);
    the confidence interval uses the unpooled (Wald) one, as statsmodels' defaults do, so at the
    very edge of significance the two may disagree.
    """
    _check_counts(successes_a, n_a)
    _check_counts(successes_b, n_b)
    _check_alpha(alpha)
    a = SampleSummary.of_proportion(successes_a, n_a)
    b = SampleSummary.of_proportion(successes_b, n_b)
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se_null = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    effect = b.mean - a.mean
    if se_null > 0:
        p_value = 2 * _NORMAL.cdf(-abs(effect) / se_null)
    else:  # every outcome on both sides is the same
        p_value = 1.0
    se = math.sqrt(a.variance / n_a + b.variance / n_b)
    half_width = _NORMAL.inv_cdf(1 - alpha / 2) * se
    return _result(
        "two_proportion", a, b, half_width, p_value, alpha=alpha, higher_is_better=higher_is_better
    )


def welch_test(
    a: SampleSummary | Iterable[float],
    b: SampleSummary | Iterable[float],
    *,
    alpha: float = 0.05,
    higher_is_better: bool = True,
) -> TestResult:
    """Two-sided Welch t test of a difference of means (unequal variances).

    ``a`` and ``b`` are summaries or raw outcomes; each needs at least two values.
    """
    from scipy import stats

    _check_alpha(alpha)
    a = a if isinstance(a, SampleSummary) else SampleSummary.of(a)
    b = b if isinstance(b, SampleSummary) else SampleSummary.of(b)
    if a.n < 2 or b.n < 2:
        raise ValueError(f"the Welch test needs 2 or more values per side, found {a.n} and {b.n}")
    share_a, share_b = a.variance / a.n, b.variance / b.n
    se = math.sqrt(share_a + share_b)
    effect = b.mean - a.mean
    if se == 0:  # both sides constant: the difference is exact
        return _result(
            "welch",
            a,
            b,
            0.0,
            1.0 if effect == 0 else 0.0,
            alpha=alpha,
            higher_is_better=higher_is_better,
        )
    df = (share_a + share_b) ** 2 / (share_a**2 / (a.n - 1) + share_b**2 / (b.n - 1))
    p_value = float(2 * stats.t.sf(abs(effect) / se, df))
    half_width = float(stats.t.ppf(1 - alpha / 2, df)) * se
    return _result(
        "welch", a, b, half_width, p_value, alpha=alpha, higher_is_better=higher_is_better
    )


def sequential_test(
    a: SampleSummary,
    b: SampleSummary,
    *,
    tau: float,
    alpha: float = 0.05,
    higher_is_better: bool = True,
    horizon: int | None = None,
) -> TestResult:
    """Mixture SPRT of a difference of means, valid at every look (see the module docstring).

    Args:
        a: Champion outcomes (:meth:`SampleSummary.of_proportion` for 0/1 outcomes).
        b: Challenger outcomes.
        tau: Standard deviation of the normal mixture over the effect; the size of effect the
            test is most sensitive to (the minimum detectable effect is a good choice).
        alpha: Significance level.
        higher_is_better: Direction of the outcome.
        horizon: Outcomes per side after which a non-significant result is final
            (``no_difference``); before it, and without one, the decision is ``continue``.
    """
    _check_alpha(alpha)
    if tau <= 0:
        raise ValueError(f"tau must be positive, found {tau}")
    final = horizon is not None and min(a.n, b.n) >= horizon
    if a.n < 2 or b.n < 2:
        return _result(
            "sequential",
            a,
            b,
            math.inf,
            1.0,
            alpha=alpha,
            higher_is_better=higher_is_better,
            final=final,
        )
    effect = b.mean - a.mean
    s2 = a.variance / a.n + b.variance / b.n  # variance of the estimated effect
    t2 = tau * tau
    if s2 == 0:
        p_value = 1.0 if effect == 0 else 0.0
        half_width = 0.0
    else:
        log_lr = 0.5 * math.log(s2 / (s2 + t2)) + t2 * effect * effect / (2 * s2 * (s2 + t2))
        p_value = min(1.0, math.exp(-log_lr)) if log_lr > 0 else 1.0
        # the effects theta0 that the test would not reject: an always-valid interval
        radius = 2 * s2 * (s2 + t2) / t2 * (math.log(1 / alpha) + 0.5 * math.log((s2 + t2) / s2))
        half_width = math.sqrt(radius)
    return _result(
        "sequential",
        a,
        b,
        half_width,
        p_value,
        alpha=alpha,
        higher_is_better=higher_is_better,
        final=final,
    )


def _z_sum(alpha: float, power: float) -> float:
    _check_alpha(alpha)
    if not 0 < power < 1:
        raise ValueError(f"power must lie strictly between 0 and 1, found {power}")
    return _NORMAL.inv_cdf(1 - alpha / 2) + _NORMAL.inv_cdf(power)


def required_sample_size(
    baseline_rate: float,
    minimum_detectable_effect: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int:
    """Outcomes per version for a two-sided two-proportion z test to detect an absolute change.

    The change is taken upwards from ``baseline_rate`` (downwards if that would pass 1); the
    formula is the usual one without continuity correction (Fleiss).
    """
    if not 0 < baseline_rate < 1:
        raise ValueError(f"baseline_rate must lie strictly between 0 and 1, found {baseline_rate}")
    if minimum_detectable_effect <= 0:
        raise ValueError(
            f"minimum_detectable_effect must be positive, found {minimum_detectable_effect}"
        )
    z_sum = _z_sum(alpha, power)  # validates alpha and power
    p1 = baseline_rate
    p2 = p1 + minimum_detectable_effect
    if p2 >= 1:
        p2 = p1 - minimum_detectable_effect
    if p2 <= 0:
        raise ValueError(
            f"a change of {minimum_detectable_effect} from {baseline_rate} leaves the range 0..1"
        )
    z_alpha = _NORMAL.inv_cdf(1 - alpha / 2)
    z_beta = z_sum - z_alpha
    mean = (p1 + p2) / 2
    root = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return math.ceil((root / minimum_detectable_effect) ** 2)


def required_sample_size_means(
    std: float, minimum_detectable_effect: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Outcomes per version for a two-sided test of means with a common standard deviation."""
    if std < 0 or minimum_detectable_effect <= 0:
        raise ValueError(
            "expected std >= 0 and minimum_detectable_effect > 0, "
            f"found {std} and {minimum_detectable_effect}"
        )
    z_sum = _z_sum(alpha, power)
    return max(2, math.ceil(2 * (z_sum * std / minimum_detectable_effect) ** 2))


def psi(
    expected_counts: Sequence[float], actual_counts: Sequence[float], eps: float = 1e-4
) -> float:
    """Population stability index of two histograms on the same bins.

    ``sum((actual - expected) * ln(actual / expected))`` over the bins' shares; shares below
    ``eps`` count as ``eps`` so that an empty bin does not make the index infinite. Rules of
    thumb: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a large one.
    """
    if len(expected_counts) != len(actual_counts):
        raise ValueError(
            f"the histograms must share their bins, found {len(expected_counts)} and "
            f"{len(actual_counts)} bins"
        )
    total_e, total_a = math.fsum(expected_counts), math.fsum(actual_counts)
    if total_e <= 0 or total_a <= 0:
        raise ValueError("both histograms need at least one count")
    index = 0.0
    for e_count, a_count in zip(expected_counts, actual_counts, strict=True):
        e_share = max(e_count / total_e, eps)
        a_share = max(a_count / total_a, eps)
        index += (a_share - e_share) * math.log(a_share / e_share)
    return index
