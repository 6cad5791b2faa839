"""The experiment policies: an A/B test on an outcome, and a shadow comparison.

A/B: the split stays fixed; guardrails apply as in a canary. Once the step has held its minimum
requests and time and each version has :data:`MIN_OUTCOMES` labelled outcomes:

- ``two_proportion``/``welch`` run once each version has the planned sample size: ``sample_size``
  if set, else the size that detects ``minimum_detectable_effect`` with ``power`` at ``alpha``
  (for two proportions from ``baseline_rate``, or the champion's observed rate; for means from the
  observed standard deviation; set ``sample_size`` or ``baseline_rate`` to fix the plan up front).
- ``sequential`` (mSPRT) runs at every check, with ``tau = minimum_detectable_effect``; it stops as
  soon as it is significant, and at the planned sample size (its horizon) it concludes no
  difference.

The result decides: challenger significantly better → promote; champion significantly better →
roll back; no significant difference → promote when ``promote_if`` is ``not_worse`` (the
challenger is not shown to be worse, so the newer model wins the tie), roll back when it is
``better``. The test's conclusion is acted on whatever ``auto_rollback`` says: it is the planned
end of the experiment, not an alarm.

Shadow: callers only ever get the champion's answers. Guardrails apply to the mirrored requests
(a breach stops the mirror: ``rollback``). Once the step has held, the comparison (agreement of
predicted classes, mean absolute score difference, latency) is reported. Without
``min_agreement``/``max_mean_abs_diff`` the shadow is ``complete`` (step 1) and a person promotes
or aborts; with them, passing every set criterion promotes and failing one rolls back.
"""

from __future__ import annotations

import math

from conveyor.deploy._decisions import Step, all_to
from conveyor.deploy._guardrails import VersionStats, num, pct
from conveyor.deploy._state import Decision, RolloutState
from conveyor.deploy._stats import (
    SampleSummary,
    TestResult,
    required_sample_size,
    required_sample_size_means,
    sequential_test,
    two_proportion_test,
    welch_test,
)
from conveyor.spec import AbRollout, ShadowRollout

__all__ = ["MIN_OUTCOMES", "ab", "planned_sample_size", "shadow"]

MIN_OUTCOMES = 30
"""Labelled outcomes each version needs before any test runs (normal approximations)."""


def _outcomes(policy: AbRollout, stats: VersionStats) -> SampleSummary:
    if policy.test == "two_proportion" and stats.outcome_n > 0:
        return SampleSummary.of_proportion(round(stats.outcome_sum), stats.outcome_n)
    return SampleSummary.from_sums(stats.outcome_n, stats.outcome_sum, stats.outcome_sum_sq)


def planned_sample_size(
    policy: AbRollout, champion: SampleSummary, challenger: SampleSummary
) -> int:
    """Outcomes per version the A/B test waits for (the sequential test's horizon)."""
    if policy.sample_size is not None:
        return policy.sample_size
    effect, alpha, power = policy.minimum_detectable_effect, policy.alpha, policy.power
    if policy.test == "two_proportion":
        edge = 0.5 / max(champion.n, 1)  # keep an observed 0 % or 100 % plannable
        baseline = policy.baseline_rate or min(max(champion.mean, edge), 1 - edge)
        try:
            planned = required_sample_size(baseline, effect, alpha=alpha, power=power)
        except ValueError:  # an effect too large for the rate: any sample detects it
            planned = MIN_OUTCOMES
    else:
        std = math.sqrt((champion.variance + challenger.variance) / 2)
        planned = required_sample_size_means(std, effect, alpha=alpha, power=power)
    return max(planned, MIN_OUTCOMES)


def _run(policy: AbRollout, a: SampleSummary, b: SampleSummary, planned: int) -> TestResult:
    higher = policy.higher_is_better
    if policy.test == "two_proportion":
        successes_a, successes_b = round(a.mean * a.n), round(b.mean * b.n)
        return two_proportion_test(
            successes_a, a.n, successes_b, b.n, alpha=policy.alpha, higher_is_better=higher
        )
    if policy.test == "welch":
        return welch_test(a, b, alpha=policy.alpha, higher_is_better=higher)
    return sequential_test(
        a,
        b,
        tau=policy.minimum_detectable_effect,
        alpha=policy.alpha,
        higher_is_better=higher,
        horizon=planned,
    )


def ab(
    state: RolloutState, policy: AbRollout, champion: VersionStats, challenger: VersionStats
) -> Decision:
    """Decide an A/B rollout (see the module docstring)."""
    new, old = state.challenger, state.champion
    step = Step(state, f"A/B test of v{new} ({policy.split:g}%) vs v{old}", champion, challenger)
    decision = step.breach() or step.wait(policy.min_seconds_per_step)
    if decision is not None:
        return decision
    a, b = _outcomes(policy, champion), _outcomes(policy, challenger)
    step.metrics.update(n_champion=float(a.n), n_challenger=float(b.n))
    if min(a.n, b.n) < MIN_OUTCOMES:
        return step.decision(
            "hold",
            f": waiting for outcomes: {b.n:,} (v{new}) and {a.n:,} (v{old}) labelled, "
            f"{MIN_OUTCOMES} needed per version; {step.summary}",
        )
    planned = planned_sample_size(policy, a, b)
    step.metrics["planned_n"] = float(planned)
    if policy.test != "sequential" and min(a.n, b.n) < planned:
        return step.decision(
            "hold",
            f": collecting outcomes: {min(a.n, b.n):,}/{planned:,} per version before the "
            f"{policy.test} test on {policy.metric}; {step.summary}",
        )
    result = _run(policy, a, b, planned)
    step.metrics.update(
        estimate_champion=result.estimate_a,
        estimate_challenger=result.estimate_b,
        effect=result.effect,
        ci_low=result.ci_low,
        ci_high=result.ci_high,
        p_value=result.p_value,
    )
    found = (
        f": {policy.test} test on {policy.metric} after {b.n:,} and {a.n:,} outcomes: "
        f"v{new} {num(result.estimate_b)} vs v{old} {num(result.estimate_a)}, "
        f"effect {result.effect:+.3g} ({1 - policy.alpha:.0%} CI {result.ci_low:+.3g} to "
        f"{result.ci_high:+.3g}), p={result.p_value:.2g}"
    )
    if result.decision == "continue":
        return step.decision("hold", f"{found} → continuing up to {planned:,} per version")
    if result.decision == "challenger_better":
        verdict, promote = f"v{new} is better", True
    elif result.decision == "champion_better":
        verdict, promote = f"v{old} is better", False
    elif policy.promote_if == "not_worse":
        verdict, promote = f"no significant difference, v{new} is not worse", True
    else:
        verdict, promote = "no significant difference and promote_if is 'better'", False
    if promote:
        return step.decision(
            "promote", f"{found} → {verdict} → promoting v{new}", weights=all_to(new, state)
        )
    return step.decision(
        "rollback", f"{found} → {verdict} → rolling back to v{old}", weights=all_to(old, state)
    )


def _comparison(step: Step) -> str:
    new, old = step.challenger, step.champion
    parts = []
    if new.compared:
        agreement, mean_diff = new.agreed / new.compared, new.abs_diff_sum / new.compared
        step.metrics.update(
            compared=float(new.compared), agreement=agreement, mean_abs_diff=mean_diff
        )
        parts.append(
            f"agreement {pct(agreement)} over {new.compared:,} compared, "
            f"mean |score diff| {num(mean_diff)}"
        )
    else:
        parts.append("no compared predictions")
    if new.p99_ms is not None and old.p99_ms is not None:
        parts.append(f"p99 {num(new.p99_ms)} ms vs {num(old.p99_ms)} ms")
    return ", ".join(parts)


def shadow(
    state: RolloutState, policy: ShadowRollout, champion: VersionStats, challenger: VersionStats
) -> Decision:
    """Decide a shadow rollout (see the module docstring)."""
    new = state.challenger
    where = f"shadow of v{new} ({policy.sample_rate * 100:g}% mirrored)"
    step = Step(state, where, champion, challenger)
    decision = step.breach()
    if decision is not None:
        return decision
    compared = _comparison(step)
    if state.step >= 1:
        return step.decision(
            "none", f" is complete: {compared}; {step.summary}; promote or abort by hand"
        )
    decision = step.wait(policy.min_seconds_per_step)
    if decision is not None:
        return decision
    held = f" {step.held}: {compared}; {step.summary}"
    if policy.min_agreement is None and policy.max_mean_abs_diff is None:
        return step.decision(
            "complete", f"{held} → complete; promote v{new} or abort by hand", step=1
        )
    minimum = policy.guardrails.min_requests
    if challenger.compared < minimum:
        return step.decision(
            "hold", f": waiting for compared predictions: {challenger.compared:,}/{minimum:,}"
        )
    results = []
    if policy.min_agreement is not None:
        agreement = challenger.agreed / challenger.compared
        ok = agreement >= policy.min_agreement
        results.append(
            (ok, f"agreement {pct(agreement)} {'≥' if ok else '<'} {pct(policy.min_agreement)}")
        )
    if policy.max_mean_abs_diff is not None:
        mean_diff = challenger.abs_diff_sum / challenger.compared
        ok = mean_diff <= policy.max_mean_abs_diff
        limit = policy.max_mean_abs_diff
        results.append((ok, f"mean |score diff| {num(mean_diff)} {'≤' if ok else '>'} {limit:g}"))
    verdicts = ", ".join(text for _, text in results)
    if all(ok for ok, _ in results):
        return step.decision(
            "promote", f"{held}; {verdicts} → promoting v{new}", weights=all_to(new, state)
        )
    old = state.champion
    return step.decision(
        "rollback",
        f"{held}; {verdicts} → rolling back to v{old} (stopping the mirror)",
        weights=all_to(old, state),
    )
