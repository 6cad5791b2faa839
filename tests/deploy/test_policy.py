"""The controller's decision function, table-driven: every policy, guardrail and edge case."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor.deploy import (
    Decision,
    RolloutPolicy,
    RolloutState,
    RolloutStatus,
    VersionStats,
    decide,
    required_sample_size,
)
from conveyor.spec import AbRollout, BlueGreenRollout, CanaryRollout, ShadowRollout

CHAMPION, CHALLENGER = 4, 5
START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
GUARDED = {
    "error_rate": 0.01,
    "p99_latency_ms": 50,
    "prediction_psi": 0.25,
    "quality_drop": 0.02,
}


def canary(**fields: Any) -> CanaryRollout:
    return CanaryRollout.model_validate({"guardrails": GUARDED, **fields})


def blue_green(**fields: Any) -> BlueGreenRollout:
    return BlueGreenRollout.model_validate(
        {"policy": "blue_green", "guardrails": GUARDED, "bake_seconds": 300, **fields}
    )


def ab(**fields: Any) -> AbRollout:
    return AbRollout.model_validate(
        {"policy": "ab", "guardrails": GUARDED, "sample_size": 1000, **fields}
    )


def shadow(**fields: Any) -> ShadowRollout:
    return ShadowRollout.model_validate({"policy": "shadow", "guardrails": GUARDED, **fields})


def rollout(
    policy: RolloutPolicy,
    state: RolloutStatus = "rolling",
    step: int = 0,
    elapsed: float = 120.0,
    weights: dict[int, float] | None = None,
    **extra: Any,
) -> RolloutState:
    return RolloutState(
        policy=policy,
        state=state,
        step=step,
        step_started_at=START,
        champion=CHAMPION,
        challenger=CHALLENGER,
        weights=weights if weights is not None else {CHAMPION: 95.0, CHALLENGER: 5.0},
        now=START + timedelta(seconds=elapsed),
        **extra,
    )


HEALTHY = VersionStats(
    requests=812, errors=1, p95_ms=12, p99_ms=18, score_hist=(200, 200, 200, 212)
)
BUSY_CHAMPION = VersionStats(
    requests=20_000, errors=10, p95_ms=11, p99_ms=17, score_hist=(5000, 5000, 5000, 5000)
)
ALL_TO_CHAMPION = {CHAMPION: 100.0, CHALLENGER: 0.0}
ALL_TO_CHALLENGER = {CHAMPION: 0.0, CHALLENGER: 100.0}
TO_25 = {CHAMPION: 75.0, CHALLENGER: 25.0}


def outcomes(n: int, rate: float) -> dict[str, Any]:
    successes = round(n * rate)
    return {"outcome_n": n, "outcome_sum": successes, "outcome_sum_sq": successes}


def with_outcomes(n: int, rate: float, base: VersionStats = HEALTHY) -> VersionStats:
    return VersionStats(**{**base.__dict__, **outcomes(n, rate)})


@dataclass
class Case:
    state: RolloutState
    action: str
    challenger: VersionStats = HEALTHY
    champion: VersionStats = BUSY_CHAMPION
    step: int | None = None  # default: the state's step
    weights: dict[int, float] | None = None  # default: unchanged
    reason: list[str] = field(default_factory=list)
    guardrail: str | None = None


CASES = {
    # --- state machine ---
    "paused": Case(rollout(canary(), "paused"), "none", reason=["rollout is paused"]),
    "promoted": Case(rollout(canary(), "promoted"), "none", reason=["nothing left to do"]),
    "rolled_back": Case(rollout(canary(), "rolled_back"), "none"),
    "failed": Case(rollout(canary(), "failed"), "none"),
    "paused ignores a breach": Case(
        rollout(canary(), "paused"), "none", challenger=VersionStats(requests=100, errors=90)
    ),
    # --- canary ---
    "canary starts": Case(
        rollout(canary(), "pending", weights=ALL_TO_CHAMPION),
        "advance",
        step=0,
        weights={CHAMPION: 95.0, CHALLENGER: 5.0},
        reason=["starting canary of v5: step 1/4 sends it 5% of traffic"],
    ),
    "canary without challenger traffic waits": Case(
        rollout(canary(), elapsed=10),
        "hold",
        challenger=VersionStats(),
        reason=["waiting for 0/500 requests and 10/60 s", "error rate n/a (no requests)"],
    ),
    "canary waits for time": Case(
        rollout(canary(), elapsed=30), "hold", reason=["waiting for 30/60 s"]
    ),
    "canary advances": Case(
        rollout(canary(), step=1, elapsed=61, weights={CHAMPION: 75.0, CHALLENGER: 25.0}),
        "advance",
        step=2,
        weights={CHAMPION: 50.0, CHALLENGER: 50.0},
        reason=[
            "canary step 2/4 (25%) held 61 s and 812 requests: error rate 0.123% (1/812) ≤ 1%, "
            "p99 18 ms ≤ 50 ms, PSI 0.001 ≤ 0.25, quality n/a (no labels yet)",
            "→ advancing to 50%",
        ],
    ),
    "canary last step promotes": Case(
        rollout(canary(), step=3, weights=ALL_TO_CHALLENGER),
        "promote",
        weights=ALL_TO_CHALLENGER,
        reason=["canary step 4/4 (100%) held 120 s", "→ promoting v5"],
    ),
    "canary step beyond an edited spec counts as the last": Case(
        rollout(canary(steps=[50, 100]), step=3), "promote", weights=ALL_TO_CHALLENGER
    ),
    "canary missing latency is not judged": Case(
        rollout(canary()),
        "advance",
        challenger=VersionStats(requests=600),
        step=1,
        weights=TO_25,
        reason=["p99 n/a", "PSI n/a (no prediction histogram)", "quality n/a"],
    ),
    "canary one early error is not a breach": Case(
        rollout(canary(), elapsed=5),
        "hold",
        challenger=VersionStats(requests=3, errors=1),
        reason=["error rate 33.3% (1/3) not judged before 20 requests"],
    ),
    "canary judges at least guardrails.min_requests": Case(
        rollout(canary(min_requests_per_step=0, min_seconds_per_step=0)),
        "hold",
        challenger=VersionStats(requests=19),
        reason=["waiting for 19/20 requests"],
    ),
    "canary certain early error rate rolls back": Case(
        rollout(canary(), elapsed=5),
        "rollback",
        challenger=VersionStats(requests=3, errors=3),
        weights=ALL_TO_CHAMPION,
        guardrail="error_rate",
        reason=["error rate 100% (3/3) > 1% already after 3 requests", "rolling back to v4"],
    ),
    "canary error rate breach": Case(
        rollout(canary(), step=1),
        "rollback",
        challenger=VersionStats(requests=600, errors=30, p99_ms=20),
        weights=ALL_TO_CHAMPION,
        guardrail="error_rate",
        reason=[
            "canary step 2/4 (25%): guardrail error_rate breached: error rate 5% (30/600) > 1% "
            "→ rolling back to v4"
        ],
    ),
    "canary p99 breach": Case(
        rollout(canary(), elapsed=5),
        "rollback",
        challenger=VersionStats(requests=50, p99_ms=180),
        weights=ALL_TO_CHAMPION,
        guardrail="p99_latency_ms",
        reason=["p99 180 ms > 50 ms"],
    ),
    "canary p99 under the minimum requests is not judged": Case(
        rollout(canary(), elapsed=5),
        "hold",
        challenger=VersionStats(requests=5, p99_ms=180),
        reason=["p99 180 ms not judged before 20 requests"],
    ),
    "canary PSI breach": Case(
        rollout(canary()),
        "rollback",
        challenger=VersionStats(requests=600, p99_ms=20, score_hist=(20, 20, 60, 500)),
        weights=ALL_TO_CHAMPION,
        guardrail="prediction_psi",
        reason=["PSI 1.713 > 0.25"],
    ),
    "canary PSI on different bins is skipped": Case(
        rollout(canary()),
        "advance",
        challenger=VersionStats(requests=600, p99_ms=20, score_hist=(300, 300)),
        step=1,
        weights=TO_25,
        reason=["PSI n/a (2 vs 4 bins)"],
    ),
    "canary quality drop breach": Case(
        rollout(canary()),
        "rollback",
        challenger=VersionStats(requests=600, quality=0.80, quality_n=100),
        champion=VersionStats(requests=9000, quality=0.85, quality_n=900),
        weights=ALL_TO_CHAMPION,
        guardrail="quality_drop",
        reason=["quality drop 0.05 > 0.02 (0.8 vs 0.85)"],
    ),
    "canary quality drop of a lower-is-better metric": Case(
        rollout(canary(), quality_higher_is_better=False),
        "rollback",
        challenger=VersionStats(requests=600, quality=1.30, quality_n=100),
        champion=VersionStats(requests=9000, quality=1.00, quality_n=900),
        weights=ALL_TO_CHAMPION,
        guardrail="quality_drop",
    ),
    "canary quality better when lower is fine": Case(
        rollout(canary(), quality_higher_is_better=False),
        "advance",
        challenger=VersionStats(requests=600, quality=0.90, quality_n=100),
        champion=VersionStats(requests=9000, quality=1.00, quality_n=900),
        step=1,
        weights=TO_25,
    ),
    "canary quality with too few labels waits for labels": Case(
        rollout(canary()),
        "advance",
        challenger=VersionStats(requests=600, quality=0.10, quality_n=5),
        champion=VersionStats(requests=9000, quality=0.85, quality_n=900),
        step=1,
        weights=TO_25,
        reason=["quality n/a (5 new and 900 current labels, 20 needed)"],
    ),
    "canary breach without auto_rollback holds": Case(
        rollout(canary(auto_rollback=False)),
        "hold",
        challenger=VersionStats(requests=600, errors=60),
        guardrail="error_rate",
        reason=["auto_rollback is off"],
    ),
    "canary several breaches are all named": Case(
        rollout(canary()),
        "rollback",
        challenger=VersionStats(requests=600, errors=60, p99_ms=400),
        weights=ALL_TO_CHAMPION,
        guardrail="error_rate",
        reason=["guardrail error_rate, p99_latency_ms breached"],
    ),
    "canary without guardrails": Case(
        rollout(canary(guardrails={"error_rate": None})),
        "advance",
        challenger=VersionStats(requests=600, errors=300),
        step=1,
        weights=TO_25,
        reason=["no guardrails set"],
    ),
    # --- blue-green ---
    "blue-green starts warm at 0%": Case(
        rollout(blue_green(), "pending", weights=ALL_TO_CHAMPION),
        "advance",
        step=0,
        weights=ALL_TO_CHAMPION,
        reason=["warming v5 beside v4 with no traffic and sending it 20 synthetic requests"],
    ),
    "blue-green waits for synthetic checks": Case(
        rollout(blue_green(), weights=ALL_TO_CHAMPION),
        "hold",
        challenger=VersionStats(),
        reason=["waiting for the 20 synthetic requests to v5"],
    ),
    "blue-green synthetic failure rolls back": Case(
        rollout(blue_green(), weights=ALL_TO_CHAMPION, synthetic_ok=False),
        "rollback",
        challenger=VersionStats(),
        weights=ALL_TO_CHAMPION,
        guardrail="synthetic",
        reason=["v5 failed its 20 synthetic requests"],
    ),
    "blue-green synthetic failure without auto_rollback holds": Case(
        rollout(blue_green(auto_rollback=False), weights=ALL_TO_CHAMPION, synthetic_ok=False),
        "hold",
        challenger=VersionStats(),
        guardrail="synthetic",
    ),
    "blue-green switches all at once": Case(
        rollout(blue_green(), weights=ALL_TO_CHAMPION, synthetic_ok=True),
        "advance",
        challenger=VersionStats(),
        step=1,
        weights=ALL_TO_CHALLENGER,
        reason=["switching all traffic to v5; v4 stays warm for 300 s"],
    ),
    "blue-green without synthetic checks": Case(
        rollout(blue_green(synthetic_requests=0), weights=ALL_TO_CHAMPION),
        "advance",
        challenger=VersionStats(),
        step=1,
        weights=ALL_TO_CHALLENGER,
        reason=["no synthetic checks"],
    ),
    "blue-green bake holds": Case(
        rollout(blue_green(), step=1, elapsed=100, weights=ALL_TO_CHALLENGER),
        "hold",
        champion=VersionStats(),
        reason=["blue-green bake of v5 (100%): waiting for 100/300 s", "PSI n/a"],
    ),
    "blue-green bake breach rolls back to the warm champion": Case(
        rollout(blue_green(), step=1, elapsed=100, weights=ALL_TO_CHALLENGER),
        "rollback",
        challenger=VersionStats(requests=900, errors=50),
        champion=VersionStats(),
        weights=ALL_TO_CHAMPION,
        guardrail="error_rate",
    ),
    "blue-green promotes after the bake": Case(
        rollout(blue_green(), step=1, elapsed=301, weights=ALL_TO_CHALLENGER),
        "promote",
        champion=VersionStats(),
        weights=ALL_TO_CHALLENGER,
        reason=["held 301 s and 812 requests", "promoting v5"],
    ),
    "blue-green bake defaults to min_seconds_per_step": Case(
        rollout(
            blue_green(bake_seconds=None, min_seconds_per_step=90),
            step=1,
            elapsed=95,
            weights=ALL_TO_CHALLENGER,
        ),
        "promote",
        weights=ALL_TO_CHALLENGER,
    ),
    # --- A/B ---
    "ab starts with the split": Case(
        rollout(ab(split=20), "pending", weights=ALL_TO_CHAMPION),
        "advance",
        step=0,
        weights={CHAMPION: 80.0, CHALLENGER: 20.0},
        reason=["20% of traffic to v5, 80% to v4, compared on accuracy with a two_proportion"],
    ),
    "ab waits for outcomes": Case(
        rollout(ab()),
        "hold",
        challenger=with_outcomes(12, 0.8),
        champion=with_outcomes(40, 0.8, BUSY_CHAMPION),
        reason=["waiting for outcomes: 12 (v5) and 40 (v4) labelled, 30 needed"],
    ),
    "ab collects the planned sample": Case(
        rollout(ab()),
        "hold",
        challenger=with_outcomes(500, 0.9),
        champion=with_outcomes(700, 0.8, BUSY_CHAMPION),
        reason=["collecting outcomes: 500/1,000 per version before the two_proportion test"],
    ),
    "ab challenger better promotes": Case(
        rollout(ab()),
        "promote",
        challenger=with_outcomes(1000, 0.86),
        champion=with_outcomes(1000, 0.80, BUSY_CHAMPION),
        weights=ALL_TO_CHALLENGER,
        reason=["v5 0.86 vs v4 0.8, effect +0.06 (95% CI", "→ v5 is better → promoting v5"],
    ),
    "ab champion better rolls back": Case(
        rollout(ab(auto_rollback=False)),  # the test's verdict is not an alarm
        "rollback",
        challenger=with_outcomes(1000, 0.74),
        champion=with_outcomes(1000, 0.80, BUSY_CHAMPION),
        weights=ALL_TO_CHAMPION,
        reason=["→ v4 is better → rolling back to v4"],
    ),
    "ab no difference promotes a challenger that is not worse": Case(
        rollout(ab()),
        "promote",
        challenger=with_outcomes(1000, 0.805),
        champion=with_outcomes(1000, 0.80, BUSY_CHAMPION),
        weights=ALL_TO_CHALLENGER,
        reason=["no significant difference, v5 is not worse"],
    ),
    "ab no difference keeps the champion when it must be better": Case(
        rollout(ab(promote_if="better")),
        "rollback",
        challenger=with_outcomes(1000, 0.805),
        champion=with_outcomes(1000, 0.80, BUSY_CHAMPION),
        weights=ALL_TO_CHAMPION,
        reason=["no significant difference and promote_if is 'better'"],
    ),
    "ab welch on a lower-is-better error": Case(
        rollout(ab(metric="absolute_error", test="welch", sample_size=100)),
        "promote",
        challenger=VersionStats(
            requests=600, outcome_n=200, outcome_sum=200 * 1.0, outcome_sum_sq=200 * 1.25
        ),
        champion=VersionStats(
            requests=900, outcome_n=200, outcome_sum=200 * 1.5, outcome_sum_sq=200 * 2.5
        ),
        weights=ALL_TO_CHALLENGER,
        reason=["welch test on absolute_error", "effect -0.5", "v5 is better"],
    ),
    "ab sequential stops early on a clear effect": Case(
        rollout(ab(test="sequential", sample_size=20_000)),
        "promote",
        challenger=with_outcomes(2000, 0.86),
        champion=with_outcomes(2000, 0.80, BUSY_CHAMPION),
        weights=ALL_TO_CHALLENGER,
        reason=["sequential test on accuracy after 2,000 and 2,000 outcomes"],
    ),
    "ab sequential continues on a small effect": Case(
        rollout(ab(test="sequential", sample_size=20_000)),
        "hold",
        challenger=with_outcomes(2000, 0.81),
        champion=with_outcomes(2000, 0.80, BUSY_CHAMPION),
        reason=["→ continuing up to 20,000 per version"],
    ),
    "ab sequential at its horizon finds no difference": Case(
        rollout(ab(test="sequential", sample_size=2000)),
        "promote",
        challenger=with_outcomes(2000, 0.81),
        champion=with_outcomes(2000, 0.80, BUSY_CHAMPION),
        weights=ALL_TO_CHALLENGER,
        reason=["no significant difference"],
    ),
    "ab guardrail breach rolls back before any test": Case(
        rollout(ab()),
        "rollback",
        challenger=with_outcomes(1000, 0.99, VersionStats(requests=900, errors=90)),
        champion=with_outcomes(1000, 0.80, BUSY_CHAMPION),
        weights=ALL_TO_CHAMPION,
        guardrail="error_rate",
    ),
    "ab waits for the step's minimum time": Case(
        rollout(ab(), elapsed=10),
        "hold",
        challenger=with_outcomes(1000, 0.86),
        champion=with_outcomes(1000, 0.80, BUSY_CHAMPION),
        reason=["waiting for 10/60 s"],
    ),
    # --- shadow ---
    "shadow starts": Case(
        rollout(shadow(sample_rate=0.25), "pending", weights=ALL_TO_CHAMPION),
        "advance",
        step=0,
        weights=ALL_TO_CHAMPION,
        reason=["mirroring 25% of requests to v5; callers still get v4's answers"],
    ),
    "shadow waits": Case(
        rollout(shadow(), elapsed=20, weights=ALL_TO_CHAMPION),
        "hold",
        challenger=VersionStats(requests=100, compared=100, agreed=99),
        reason=["waiting for 100/500 requests and 20/60 s"],
    ),
    "shadow completes for a person to decide": Case(
        rollout(shadow(), weights=ALL_TO_CHAMPION),
        "complete",
        challenger=VersionStats(
            requests=812, p99_ms=21, compared=800, agreed=778, abs_diff_sum=10.4
        ),
        step=1,
        reason=[
            "agreement 97.2% over 800 compared, mean |score diff| 0.013, p99 21 ms vs 17 ms",
            "→ complete; promote v5 or abort by hand",
        ],
    ),
    "shadow complete does nothing more": Case(
        rollout(shadow(), step=1, weights=ALL_TO_CHAMPION),
        "none",
        challenger=VersionStats(requests=812, compared=800, agreed=778),
        reason=["is complete"],
    ),
    "shadow agreement passes and promotes": Case(
        rollout(shadow(min_agreement=0.95), weights=ALL_TO_CHAMPION),
        "promote",
        challenger=VersionStats(requests=812, compared=800, agreed=778),
        weights=ALL_TO_CHALLENGER,
        reason=["agreement 97.2% ≥ 95% → promoting v5"],
    ),
    "shadow agreement fails and rolls back": Case(
        rollout(shadow(min_agreement=0.99, max_mean_abs_diff=0.1), weights=ALL_TO_CHAMPION),
        "rollback",
        challenger=VersionStats(requests=812, compared=800, agreed=778, abs_diff_sum=8),
        weights=ALL_TO_CHAMPION,
        reason=["agreement 97.2% < 99%, mean |score diff| 0.01 ≤ 0.1"],
    ),
    "shadow score difference fails": Case(
        rollout(shadow(max_mean_abs_diff=0.01), weights=ALL_TO_CHAMPION),
        "rollback",
        challenger=VersionStats(requests=812, compared=800, agreed=800, abs_diff_sum=40),
        weights=ALL_TO_CHAMPION,
        reason=["mean |score diff| 0.05 > 0.01"],
    ),
    "shadow criteria wait for compared predictions": Case(
        rollout(shadow(min_agreement=0.9), weights=ALL_TO_CHAMPION),
        "hold",
        challenger=VersionStats(requests=812, compared=5, agreed=5),
        reason=["waiting for compared predictions: 5/20"],
    ),
    "shadow guardrail stops the mirror": Case(
        rollout(shadow(), weights=ALL_TO_CHAMPION),
        "rollback",
        challenger=VersionStats(requests=812, errors=200),
        weights=ALL_TO_CHAMPION,
        guardrail="error_rate",
    ),
    "shadow guardrails keep watching after completion": Case(
        rollout(shadow(), step=1, weights=ALL_TO_CHAMPION),
        "rollback",
        challenger=VersionStats(requests=812, p99_ms=900),
        weights=ALL_TO_CHAMPION,
        guardrail="p99_latency_ms",
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_decide(case: Case) -> None:
    decision = decide(case.state, case.champion, case.challenger)
    assert decision.action == case.action, decision.reason
    assert decision.step == (case.state.step if case.step is None else case.step)
    expected_weights = dict(case.state.weights) if case.weights is None else case.weights
    assert decision.weights == expected_weights
    assert decision.guardrail == case.guardrail, decision.reason
    for fragment in case.reason:
        assert fragment in decision.reason, decision.reason
    assert all(isinstance(value, float) for value in decision.metrics.values())


def test_the_advance_reason_reads_as_one_sentence() -> None:
    policy = canary(guardrails={"error_rate": 0.01, "p99_latency_ms": 50})
    state = rollout(policy, step=1, elapsed=61, weights={CHAMPION: 75.0, CHALLENGER: 25.0})
    decision = decide(state, BUSY_CHAMPION, HEALTHY)
    assert decision.reason == (
        "canary step 2/4 (25%) held 61 s and 812 requests: error rate 0.123% (1/812) ≤ 1%, "
        "p99 18 ms ≤ 50 ms → advancing to 50%"
    )


def test_metrics_carry_the_numbers_behind_the_decision() -> None:
    decision = decide(rollout(canary(), step=1, elapsed=61), BUSY_CHAMPION, HEALTHY)
    metrics = decision.metrics
    assert metrics["elapsed_s"] == 61 and metrics["step_percent"] == 25
    assert metrics["challenger_requests"] == 812 and metrics["challenger_p99_ms"] == 18
    assert metrics["error_rate"] == pytest.approx(1 / 812) and metrics["error_rate_limit"] == 0.01
    assert metrics["prediction_psi"] < 0.01 and metrics["champion_p95_ms"] == 11
    assert "quality_drop" not in metrics and metrics["quality_drop_limit"] == 0.02


def test_ab_reports_effect_size_and_confidence_interval() -> None:
    decision = decide(
        rollout(ab()),
        with_outcomes(1000, 0.80, BUSY_CHAMPION),
        with_outcomes(1000, 0.86),
    )
    metrics = decision.metrics
    assert metrics["effect"] == pytest.approx(0.06)
    assert metrics["ci_low"] < 0.06 < metrics["ci_high"] and metrics["ci_low"] > 0
    assert metrics["p_value"] < 0.05 and metrics["planned_n"] == 1000
    assert metrics["estimate_champion"] == pytest.approx(0.8)


def test_ab_plans_its_sample_from_the_baseline_rate() -> None:
    policy = ab(sample_size=None, baseline_rate=0.8, minimum_detectable_effect=0.05)
    planned = required_sample_size(0.8, 0.05)
    decision = decide(
        rollout(policy),
        with_outcomes(planned - 1, 0.80, BUSY_CHAMPION),
        with_outcomes(planned - 1, 0.80),
    )
    assert decision.action == "hold" and decision.metrics["planned_n"] == planned
    observed = decide(  # without a baseline, the champion's observed rate plans it
        rollout(ab(sample_size=None, minimum_detectable_effect=0.05)),
        with_outcomes(300, 0.80, BUSY_CHAMPION),
        with_outcomes(300, 0.80),
    )
    assert observed.metrics["planned_n"] == planned


def test_elapsed_time_never_runs_backwards() -> None:
    state = rollout(canary(), elapsed=-30)  # another machine's clock is ahead
    assert state.elapsed_seconds == 0
    assert "0/60 s" in decide(state, BUSY_CHAMPION, HEALTHY).reason


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: VersionStats(requests=3, errors=4), "errors <= requests"),
        (lambda: VersionStats(compared=3, agreed=4), "agreed <= compared"),
        (lambda: rollout(canary(), step=-1), "step must be 0 or more"),
        (
            lambda: RolloutState(
                canary(), "rolling", 0, START, CHAMPION, CHAMPION, {CHAMPION: 100.0}, START
            ),
            "the same version",
        ),
    ],
)
def test_impossible_inputs_are_refused(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_decisions_are_immutable() -> None:
    decision: Decision = decide(rollout(canary()), BUSY_CHAMPION, HEALTHY)
    with pytest.raises(AttributeError):
        decision.action = "promote"  # type: ignore[misc]
