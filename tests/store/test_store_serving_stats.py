"""Serving statistics: replicas add counts, the controller reads sums, on every backend."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor.store import (
    LATENCY_BUCKETS_MS,
    SCORE_BINS,
    STATS_WINDOW_S,
    MetadataStore,
    ServingStatsInput,
    latency_bucket,
    latency_quantile,
    score_bin,
    stats_window,
)

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
N_LATENCY = len(LATENCY_BUCKETS_MS) + 1


def _latencies(*ms: float) -> list[int]:
    counts = [0] * N_LATENCY
    for value in ms:
        counts[latency_bucket(value)] += 1
    return counts


def _scores(*scores: float) -> list[int]:
    counts = [0] * SCORE_BINS
    for value in scores:
        counts[score_bin(value)] += 1
    return counts


def _stats(version: int, at: datetime = T0, **overrides: Any) -> ServingStatsInput:
    fields: dict[str, Any] = {"model_version": version, "window": at, "requests": 10}
    fields.update(overrides)
    return ServingStatsInput(**fields)


def test_counts_of_replicas_and_flushes_add_up_per_version_and_shadow_flag(
    store: MetadataStore, unique: str
) -> None:
    a = _stats(
        3,
        T0 + timedelta(seconds=3),
        requests=100,
        errors=1,
        latency_counts=_latencies(*[1.5] * 100),
        latency_ms_sum=150.0,
        score_counts=_scores(*[0.1] * 60, *[0.9] * 40),
    )
    b = _stats(4, T0 + timedelta(seconds=11), requests=10, errors=2, latency_ms_sum=50.0)
    shadow = _stats(
        4,
        T0,
        requests=7,
        shadow=True,
        score_counts=_scores(*[0.9] * 7),
        compared=7,
        agreed=6,
        abs_diff_sum=0.7,
    )
    store.add_serving_stats(project=unique, replica="host-1", stats=[a, b, shadow])
    store.add_serving_stats(project=unique, replica="host-1", stats=[a])  # a second flush
    store.add_serving_stats(project=unique, replica="host-2", stats=[a, b])  # another replica
    store.add_serving_stats(project=f"{unique}-other", replica="host-1", stats=[a])

    summary = store.serving_stats_summary(unique, since=T0)

    assert sorted(summary) == [(3, False), (4, False), (4, True)]
    champion = summary[(3, False)]
    assert (champion.requests, champion.errors, champion.error_rate) == (300, 3, 0.01)
    assert champion.latency_counts == _latencies(*[1.5] * 300)
    assert champion.score_counts == _scores(*[0.1] * 180, *[0.9] * 120)
    assert champion.n_scores == 300 and champion.replicas == 2
    assert champion.latency_mean_ms == pytest.approx(1.5)
    assert champion.first_window == champion.last_window == T0
    challenger = summary[(4, False)]
    assert (challenger.requests, challenger.errors, challenger.error_rate) == (20, 4, 0.2)
    assert challenger.latency_p99_ms is None and challenger.latency_mean_ms is None
    assert challenger.n_scores == 0 and challenger.score_counts == [0] * SCORE_BINS
    assert challenger.first_window == T0 + timedelta(seconds=STATS_WINDOW_S)
    mirrored = summary[(4, True)]
    assert (mirrored.requests, mirrored.n_scores, mirrored.replicas) == (7, 7, 1)
    assert (mirrored.compared, mirrored.agreed) == (7, 6)
    assert mirrored.agreement_rate == pytest.approx(6 / 7)
    assert mirrored.abs_diff_sum == pytest.approx(0.7)


def test_outcomes_add_up_across_replicas_and_flushes(store: MetadataStore, unique: str) -> None:
    # 0/1 outcomes for v1 (3 of 4 successes, twice) and continuous ones for v2, some negative.
    ones = _stats(1, requests=4, outcome_n=4, outcome_sum=3.0, outcome_sum_sq=3.0)
    values = [2.5, -1.0, 0.5]
    continuous = _stats(
        2,
        T0 + timedelta(seconds=STATS_WINDOW_S),
        requests=0,  # outcomes may arrive in a window where the version answered nothing
        outcome_n=len(values),
        outcome_sum=sum(values),
        outcome_sum_sq=sum(v * v for v in values),
    )
    store.add_serving_stats(project=unique, replica="host-1", stats=[ones, continuous])
    store.add_serving_stats(project=unique, replica="host-1", stats=[ones])  # the same row
    store.add_serving_stats(project=unique, replica="host-2", stats=[continuous])
    store.add_serving_stats(project=unique, replica="host-2", stats=[_stats(3)])

    summary = store.serving_stats_summary(unique, since=T0)

    first = summary[(1, False)]
    assert (first.outcome_n, first.outcome_sum, first.outcome_sum_sq) == (8, 6.0, 6.0)
    assert first.outcome_mean == pytest.approx(0.75) and first.requests == 8
    second = summary[(2, False)]
    assert (second.outcome_n, second.requests) == (6, 0)
    assert second.outcome_sum == pytest.approx(4.0)
    assert second.outcome_sum_sq == pytest.approx(2 * (6.25 + 1.0 + 0.25))
    assert second.outcome_mean == pytest.approx(4.0 / 6)
    without = summary[(3, False)]
    assert (without.outcome_n, without.outcome_sum, without.outcome_mean) == (0, 0.0, None)


def test_entries_for_one_row_in_one_call_are_merged(store: MetadataStore, unique: str) -> None:
    entries = [_stats(1, T0 + timedelta(seconds=s), requests=1, errors=1) for s in range(10)]
    store.add_serving_stats(project=unique, replica="r", stats=entries)
    store.add_serving_stats(project=unique, replica="r", stats=[])  # nothing to do
    summary = store.serving_stats_summary(unique, since=T0)
    assert (summary[(1, False)].requests, summary[(1, False)].errors) == (10, 10)


def test_summary_filters_by_time_range_and_versions(store: MetadataStore, unique: str) -> None:
    windows = [T0 + timedelta(seconds=STATS_WINDOW_S * i) for i in range(6)]
    for version in (1, 2):
        store.add_serving_stats(
            project=unique,
            replica="r",
            stats=[_stats(version, at, requests=i + 1) for i, at in enumerate(windows)],
        )

    # A window that started before `since` is left out whole.
    late = store.serving_stats_summary(unique, since=windows[2] - timedelta(seconds=1))
    assert late[(1, False)].requests == 3 + 4 + 5 + 6
    middle = store.serving_stats_summary(unique, since=windows[1], until=windows[3], versions=[2])
    assert list(middle) == [(2, False)] and middle[(2, False)].requests == 2 + 3
    assert middle[(2, False)].last_window == windows[2]
    assert store.serving_stats_summary(unique, since=windows[5] + timedelta(seconds=1)) == {}
    assert store.serving_stats_summary(unique, since=T0, versions=[]) == {}
    with pytest.raises(ValueError, match="timezone-aware"):
        store.serving_stats_summary(unique, since=datetime(2030, 1, 1))


def test_latency_quantiles_interpolate_inside_the_bucket(store: MetadataStore, unique: str) -> None:
    # 90 requests in (1, 2] ms, 10 in (50, 75] ms: p50 lies in the first bucket, p95 and p99
    # in the second; linear interpolation places them by rank inside each.
    latency = _latencies(*[1.5] * 90, *[60.0] * 10)
    store.add_serving_stats(
        project=unique, replica="r", stats=[_stats(1, requests=100, latency_counts=latency)]
    )
    summary = store.serving_stats_summary(unique, since=T0)[(1, False)]
    assert summary.latency_p50_ms == pytest.approx(1 + 1 * 50 / 90)
    assert summary.latency_p95_ms == pytest.approx(50 + 25 * 5 / 10)
    assert summary.latency_p99_ms == pytest.approx(50 + 25 * 9 / 10)


def test_latency_quantile_edges() -> None:
    assert latency_quantile([0] * N_LATENCY, 0.99) is None
    slow = _latencies(60_000.0)
    assert latency_quantile(slow, 0.5) == LATENCY_BUCKETS_MS[-1]  # overflow: a lower bound
    first = _latencies(0.1, 0.2)
    assert latency_quantile(first, 0.0) == 0.0
    assert latency_quantile(first, 1.0) == LATENCY_BUCKETS_MS[0]
    with pytest.raises(ValueError, match="quantile"):
        latency_quantile(first, 1.5)
    with pytest.raises(ValueError, match="buckets"):
        latency_quantile([1, 2], 0.5)


def test_bucket_helpers() -> None:
    assert latency_bucket(0) == 0
    assert latency_bucket(LATENCY_BUCKETS_MS[0]) == 0  # bounds are inclusive
    assert latency_bucket(LATENCY_BUCKETS_MS[0] + 1e-9) == 1
    assert latency_bucket(1e9) == len(LATENCY_BUCKETS_MS)
    assert [score_bin(s) for s in (0.0, 0.049, 0.05, 0.999, 1.0)] == [0, 0, 1, 19, 19]
    for bad in (-0.1, 1.1, math.nan):
        with pytest.raises(ValueError, match="probability"):
            score_bin(bad)
    with pytest.raises(ValueError, match="latency"):
        latency_bucket(-1)
    odd = datetime(2030, 1, 1, 12, 0, 19, 999_999, tzinfo=UTC)
    assert stats_window(odd) == datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        stats_window(datetime(2030, 1, 1))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"requests": -1}, "requests must be a non-negative integer"),
        ({"errors": 11}, r"errors \(11\) cannot exceed requests \(10\)"),
        ({"model_version": 0}, "model_version must be a model version"),
        ({"latency_counts": [1, 2, 3]}, f"latency_counts must hold {N_LATENCY} counts"),
        ({"latency_counts": [-1] * N_LATENCY}, "non-negative integer"),
        ({"score_counts": [0] * 10}, f"score_counts must hold {SCORE_BINS} counts"),
        ({"latency_ms_sum": math.inf}, "latency_ms_sum must be a finite number"),
        ({"agreed": 2, "compared": 1}, r"agreed \(2\) cannot exceed compared \(1\)"),
        ({"window": datetime(2030, 1, 1)}, "timezone-aware"),
        ({"shadow": "yes"}, "shadow must be True or False"),
        ({"outcome_n": -1}, "outcome_n must be a non-negative integer"),
        ({"outcome_n": 2, "outcome_sum": math.nan}, "outcome_sum must be a finite number"),
        ({"outcome_n": 2, "outcome_sum_sq": -1.0}, "outcome_sum_sq must be a finite number >= 0"),
        ({"outcome_sum": 1.0}, r"must be 0 when outcome_n is 0"),
    ],
)
def test_invalid_entries_are_rejected_and_nothing_is_added(
    store: MetadataStore, unique: str, change: dict[str, Any], match: str
) -> None:
    good = _stats(1)
    with pytest.raises((ValueError, TypeError), match=match):
        store.add_serving_stats(project=unique, replica="r", stats=[good, _stats(1, **change)])
    assert store.serving_stats_summary(unique, since=T0) == {}
    with pytest.raises(ValueError, match="replica"):
        store.add_serving_stats(project=unique, replica="", stats=[good])


def test_prune_deletes_old_windows_only(store: MetadataStore, unique: str) -> None:
    old, new = T0 - timedelta(days=8), T0
    store.add_serving_stats(project=unique, replica="r", stats=[_stats(1, old), _stats(1, new)])
    assert store.prune_serving_stats(before=T0 - timedelta(days=7)) >= 1
    summary = store.serving_stats_summary(unique, since=old)
    assert summary[(1, False)].requests == 10 and summary[(1, False)].first_window == new
