"""Per-version metric aggregates of a rollout step and the guardrails judged on them.

Every field of :class:`VersionStats` except the latency percentiles is a count or a sum, so the
aggregates that several server replicas write can simply be added up.

When a guardrail is judged: the error rate, p99 latency, PSI and quality wait until the new
version has served ``guardrails.min_requests`` requests (quality: labelled requests; PSI: both
histograms), so one early error out of 3 does not roll back a healthy version. The error rate
alone may breach earlier, when it is *certainly* above the limit: the chance of seeing that many
errors if the true rate were at the limit is below :data:`CERTAINTY` (a binomial tail), as for a
version that fails its first 3 requests out of 3 against a 1 % limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from conveyor.deploy._stats import psi
from conveyor.spec import Guardrails

__all__ = ["CERTAINTY", "GuardrailCheck", "VersionStats", "check_guardrails"]

CERTAINTY = 1e-3
"""Binomial tail below which an error rate counts as above its limit before ``min_requests``."""


QUALITY_Z: Final = 1.6448536269514722
"""One-sided 95% normal quantile: a quality drop must exceed its limit by this many standard
errors (of the difference of the two versions' live metrics) to roll back."""


@dataclass(frozen=True)
class VersionStats:
    """What one version did during the current step.

    Args:
        requests: Requests answered (for a shadow: requests mirrored to it).
        errors: Requests that failed.
        p95_ms: 95th-percentile latency, or None when unknown.
        p99_ms: 99th-percentile latency, or None when unknown.
        score_hist: Prediction counts on bins shared by both versions, or None.
        quality: Live quality metric from labelled requests, or None before labels arrive.
        quality_n: Labelled requests behind ``quality``.
        quality_se: Standard error of ``quality`` (bootstrap), or None when unknown.
        outcome_n: A/B outcomes (labelled requests) of this version.
        outcome_sum: Sum of the outcomes (successes, for 0/1 outcomes).
        outcome_sum_sq: Sum of the squared outcomes (equal to ``outcome_sum`` for 0/1 outcomes).
        compared: Shadow only: mirrored requests whose answer was compared with the champion's.
        agreed: Shadow only: compared requests on which both predicted the same class.
        abs_diff_sum: Shadow only: sum over compared requests of the absolute score difference.
    """

    requests: int = 0
    errors: int = 0
    p95_ms: float | None = None
    p99_ms: float | None = None
    score_hist: tuple[int, ...] | None = None
    quality: float | None = None
    quality_n: int = 0
    quality_se: float | None = None
    outcome_n: int = 0
    outcome_sum: float = 0.0
    outcome_sum_sq: float = 0.0
    compared: int = 0
    agreed: int = 0
    abs_diff_sum: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.errors <= self.requests:
            raise ValueError(
                f"expected 0 <= errors <= requests, found {self.errors} of {self.requests}"
            )
        if not 0 <= self.agreed <= self.compared:
            raise ValueError(
                f"expected 0 <= agreed <= compared, found {self.agreed} of {self.compared}"
            )

    @property
    def error_rate(self) -> float | None:
        """Share of failed requests, or None without requests."""
        return self.errors / self.requests if self.requests else None


@dataclass(frozen=True)
class GuardrailCheck:
    """One guardrail judged on the new version.

    ``value`` is None when nothing could be measured; ``judged`` is False while there is too
    little evidence to act on it; ``text`` states the value against the limit for humans.
    """

    name: str
    value: float | None
    limit: float
    judged: bool
    breached: bool
    text: str


def pct(share: float) -> str:
    """A share as a short percentage: 0.001 → '0.1%', 0.0425 → '4.25%'."""
    return f"{share * 100:.3g}%"


def num(value: float) -> str:
    """A number in at most 3 significant digits, without exponent below 1,000."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _binomial_tail(errors: int, requests: int, rate: float) -> float:
    """P(X >= errors) for X ~ Binomial(requests, rate), summed in log space."""
    if errors <= 0:
        return 1.0
    if rate <= 0:
        return 0.0
    if rate >= 1:
        return 1.0
    log_rate, log_rest = math.log(rate), math.log1p(-rate)
    base = math.lgamma(requests + 1)
    return min(
        1.0,
        math.fsum(
            math.exp(
                base
                - math.lgamma(k + 1)
                - math.lgamma(requests - k + 1)
                + k * log_rate
                + (requests - k) * log_rest
            )
            for k in range(errors, requests + 1)
        ),
    )


def _op(breached: bool) -> str:
    return ">" if breached else "≤"


def _error_rate(limit: float, minimum: int, new: VersionStats) -> GuardrailCheck:
    n, errors = new.requests, new.errors
    if n == 0:
        return GuardrailCheck(
            "error_rate", None, limit, False, False, "error rate n/a (no requests)"
        )
    rate = errors / n
    shown = f"error rate {pct(rate)} ({errors}/{n})"
    if n >= minimum:
        breached = rate > limit
        return GuardrailCheck(
            "error_rate", rate, limit, True, breached, f"{shown} {_op(breached)} {pct(limit)}"
        )
    tail = _binomial_tail(errors, n, limit)
    if tail < CERTAINTY:
        text = f"{shown} > {pct(limit)} already after {n} requests (binomial p={tail:.1e})"
        return GuardrailCheck("error_rate", rate, limit, True, True, text)
    text = f"{shown} not judged before {minimum} requests"
    return GuardrailCheck("error_rate", rate, limit, False, False, text)


def _latency(limit: float, minimum: int, new: VersionStats) -> GuardrailCheck:
    if new.p99_ms is None:
        return GuardrailCheck("p99_latency_ms", None, limit, False, False, "p99 n/a")
    shown = f"p99 {num(new.p99_ms)} ms"
    if new.requests < minimum:
        text = f"{shown} not judged before {minimum} requests"
        return GuardrailCheck("p99_latency_ms", new.p99_ms, limit, False, False, text)
    breached = new.p99_ms > limit
    text = f"{shown} {_op(breached)} {num(limit)} ms"
    return GuardrailCheck("p99_latency_ms", new.p99_ms, limit, True, breached, text)


def _psi(limit: float, minimum: int, old: VersionStats, new: VersionStats) -> GuardrailCheck:
    def skip(why: str) -> GuardrailCheck:
        return GuardrailCheck("prediction_psi", None, limit, False, False, f"PSI n/a ({why})")

    if new.score_hist is None or old.score_hist is None:
        return skip("no prediction histogram")
    if len(new.score_hist) != len(old.score_hist):
        return skip(f"{len(new.score_hist)} vs {len(old.score_hist)} bins")
    counts = sum(new.score_hist), sum(old.score_hist)
    if min(counts) < minimum:
        return skip(f"{counts[0]} and {counts[1]} predictions, fewer than {minimum}")
    value = psi(old.score_hist, new.score_hist)
    breached = value > limit
    text = f"PSI {value:.3f} {_op(breached)} {limit:g}"
    return GuardrailCheck("prediction_psi", value, limit, True, breached, text)


def _quality(
    limit: float, minimum: int, old: VersionStats, new: VersionStats, higher_is_better: bool
) -> GuardrailCheck:
    if old.quality is None or new.quality is None or min(old.quality_n, new.quality_n) < minimum:
        if old.quality is None and new.quality is None:
            why = "no labels yet"
        else:
            why = f"{new.quality_n} new and {old.quality_n} current labels, {minimum} needed"
        return GuardrailCheck("quality_drop", None, limit, False, False, f"quality n/a ({why})")
    drop = old.quality - new.quality if higher_is_better else new.quality - old.quality
    margin = 0.0
    if old.quality_se is not None and new.quality_se is not None:
        # A drop counts only when it is above the limit beyond the noise of the labels:
        # a few hundred labels move a ROC AUC by several hundredths on their own.
        margin = QUALITY_Z * math.hypot(old.quality_se, new.quality_se)
    breached = drop - margin > limit
    noise = f" ± {num(margin)}" if margin else ""
    text = (
        f"quality drop {num(drop)}{noise} {_op(breached)} {limit:g} "
        f"({num(new.quality)} vs {num(old.quality)})"
    )
    return GuardrailCheck("quality_drop", drop, limit, True, breached, text)


def check_guardrails(
    guardrails: Guardrails,
    champion: VersionStats,
    challenger: VersionStats,
    *,
    quality_higher_is_better: bool = True,
) -> tuple[GuardrailCheck, ...]:
    """Judge every enabled guardrail on the challenger (vs the champion where relative).

    Returns one check per guardrail whose limit is set, in the order error rate, p99 latency,
    PSI, quality drop.
    """
    minimum = guardrails.min_requests
    checks = []
    if guardrails.error_rate is not None:
        checks.append(_error_rate(guardrails.error_rate, minimum, challenger))
    if guardrails.p99_latency_ms is not None:
        checks.append(_latency(guardrails.p99_latency_ms, minimum, challenger))
    if guardrails.prediction_psi is not None:
        checks.append(_psi(guardrails.prediction_psi, minimum, champion, challenger))
    if guardrails.quality_drop is not None:
        checks.append(
            _quality(
                guardrails.quality_drop, minimum, champion, challenger, quality_higher_is_better
            )
        )
    return tuple(checks)
