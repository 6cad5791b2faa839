"""Traffic plans and the router: sticky, monotone, accurate splits and shadow sampling."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter

import pytest

from conveyor.deploy import BUCKETS, RouteDecision, Router, TrafficPlan

KEYS = [f"user-{i}" for i in range(100_000)]


def shares(decisions: list[RouteDecision]) -> dict[int, float]:
    counts = Counter(decision.version for decision in decisions)
    return {version: 100 * count / len(decisions) for version, count in counts.items()}


def test_a_key_always_gets_the_same_version_on_every_replica() -> None:
    plan = TrafficPlan({1: 50.0, 2: 50.0}, salt="deployment-1")
    first, second = Router(plan, seed=1), Router(plan, seed=2)  # two replicas
    for key in KEYS[:2000]:
        decision = first.route(key)
        assert decision.sticky
        assert decision == first.route(key) == second.route(key)


ROUTE_IN_SUBPROCESS = """
import sys
from conveyor.deploy import Router, TrafficPlan
router = Router(TrafficPlan({1: 50.0, 2: 50.0}, salt="deployment-1"))
print("".join(str(router.route(f"user-{i}").version) for i in range(500)))
"""


def test_assignment_does_not_depend_on_the_process_hash_seed() -> None:
    outputs = {
        subprocess.run(
            [sys.executable, "-c", ROUTE_IN_SUBPROCESS],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    router = Router(TrafficPlan({1: 50.0, 2: 50.0}, salt="deployment-1"))
    assert outputs == {"".join(str(router.route(f"user-{i}").version) for i in range(500))}


def test_the_salt_reshuffles_keys_between_deployments() -> None:
    one = Router(TrafficPlan({1: 50.0, 2: 50.0}, salt="deployment-1"))
    two = Router(TrafficPlan({1: 50.0, 2: 50.0}, salt="deployment-2"))
    same = sum(one.route(key).version == two.route(key).version for key in KEYS[:20_000])
    assert 0.48 < same / 20_000 < 0.52  # independent, not identical


@pytest.mark.parametrize(("champion", "challenger"), [(4, 5), (5, 4)])
def test_growing_the_challenger_never_moves_its_keys_back(champion: int, challenger: int) -> None:
    keys = KEYS[:30_000]
    previous: set[str] = set()
    for percent in (5.0, 25.0, 50.0, 100.0):
        plan = TrafficPlan({champion: 100 - percent, challenger: percent}, salt="d")
        router = Router(plan)
        on_challenger = {key for key in keys if router.route(key).version == challenger}
        assert previous <= on_challenger, f"keys left the challenger at {percent}%"
        assert abs(100 * len(on_challenger) / len(keys) - percent) < 1
        previous = on_challenger
    assert previous == set(keys)


@pytest.mark.parametrize(
    "weights",
    [{1: 95.0, 2: 5.0}, {1: 50.0, 2: 50.0}, {1: 70.0, 2: 20.0, 3: 10.0}, {7: 12.5, 3: 87.5}],
)
def test_the_observed_split_over_100k_keys_is_within_1_percent(weights: dict[int, float]) -> None:
    router = Router(TrafficPlan(weights, salt="deployment-9"))
    observed = shares([router.route(key) for key in KEYS])
    for version, weight in weights.items():
        assert abs(observed[version] - weight) < 1, observed


def test_requests_without_a_key_are_split_at_random_reproducibly_by_seed() -> None:
    plan = TrafficPlan({1: 75.0, 2: 25.0})
    decisions = [Router(plan, seed=7).route() for _ in range(3)]
    first = Router(plan, seed=7)
    routed = [first.route() for _ in range(100_000)]
    assert not any(decision.sticky for decision in routed)
    observed = shares(routed)
    assert abs(observed[1] - 75) < 1 and abs(observed[2] - 25) < 1
    again = Router(plan, seed=7)
    assert [again.route() for _ in range(1000)] == routed[:1000]
    assert len({d.version for d in decisions}) == 1  # same seed, same first draw


@pytest.mark.parametrize(
    ("weights", "only"),
    [({1: 100.0, 2: 0.0}, 1), ({1: 0.0, 2: 100.0}, 2), ({3: 100.0}, 3)],
)
def test_a_version_at_0_percent_gets_nothing_and_one_at_100_gets_everything(
    weights: dict[int, float], only: int
) -> None:
    router = Router(TrafficPlan(weights, salt="x"), seed=0)
    assert {router.route(key).version for key in KEYS[:20_000]} == {only}
    assert {router.route().version for _ in range(20_000)} == {only}


def test_a_hundredth_of_a_percent_is_one_bucket() -> None:
    router = Router(TrafficPlan({1: 99.99, 2: 0.01}, salt="x"))
    hits = sum(router.route(key).version == 2 for key in KEYS)
    assert 0 < hits < 40  # ~10 expected of 100k
    assert BUCKETS == 10_000


@pytest.mark.parametrize("keyed", [True, False])
def test_shadow_copies_the_declared_share_of_requests(keyed: bool) -> None:
    plan = TrafficPlan({1: 100.0, 2: 0.0}, shadow_version=2, shadow_rate=0.1, salt="s")
    router = Router(plan, seed=3)
    routed = [router.route(key if keyed else None) for key in KEYS]
    assert {decision.version for decision in routed} == {1}  # the shadow never answers
    mirrored = sum(decision.shadow == 2 for decision in routed)
    assert abs(mirrored / len(routed) - 0.1) < 0.01
    assert {decision.shadow for decision in routed} == {None, 2}


def test_keyed_shadow_sampling_is_sticky_and_independent_of_the_version() -> None:
    plan = TrafficPlan({1: 50.0, 2: 50.0}, shadow_version=3, shadow_rate=0.2, salt="s")
    router = Router(plan)
    routed = {key: router.route(key) for key in KEYS[:50_000]}
    assert all(router.route(key) == routed[key] for key in KEYS[:1000])
    for version in (1, 2):
        group = [d for d in routed.values() if d.version == version]
        share = sum(d.shadow == 3 for d in group) / len(group)
        assert abs(share - 0.2) < 0.015, (version, share)


@pytest.mark.parametrize(("rate", "expected"), [(0.0, {None}), (1.0, {2})])
def test_shadow_rate_0_and_1(rate: float, expected: set[int | None]) -> None:
    plan = TrafficPlan({1: 100.0}, shadow_version=2, shadow_rate=rate)
    router = Router(plan, seed=0)
    assert {router.route(key).shadow for key in KEYS[:5000]} == expected
    assert {router.route().shadow for _ in range(5000)} == expected


def test_a_version_never_shadows_itself() -> None:
    router = Router(TrafficPlan({1: 50.0, 2: 50.0}, shadow_version=2, shadow_rate=1.0))
    for key in KEYS[:2000]:
        decision = router.route(key)
        assert decision.shadow == (None if decision.version == 2 else 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": {1: 60.0, 2: 30.0}}, "must sum to 100 (percent), found 90"),
        ({"weights": {1: 110.0, 2: -10.0}}, "finite and >= 0"),
        ({"weights": {1: float("nan"), 2: 100.0}}, "finite and >= 0"),
        ({"weights": {}}, "must sum to 100"),
        ({"weights": {1: 100.0}, "shadow_rate": 1.5}, "shadow_rate must lie between 0 and 1"),
    ],
)
def test_an_invalid_plan_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        TrafficPlan(**kwargs)  # type: ignore[arg-type]


def test_the_plan_is_immutable_and_ordered_by_version() -> None:
    weights = {5: 20.0, 4: 80.0}
    plan = TrafficPlan(weights)
    weights[5] = 50.0  # the caller's dict does not leak in
    assert list(plan.weights.items()) == [(4, 80.0), (5, 20.0)]
    with pytest.raises(TypeError):
        plan.weights[4] = 0.0  # type: ignore[index]
    assert TrafficPlan.single(3).weights == {3: 100.0}


def test_routing_costs_a_few_microseconds() -> None:
    router = Router(TrafficPlan({1: 75.0, 2: 25.0}, shadow_version=2, shadow_rate=0.1, salt="d"))
    keys = KEYS[:50_000]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for key in keys:
            router.route(key)
        for _ in keys:
            router.route()
        best = min(best, (time.perf_counter() - start) / (2 * len(keys)))
    assert best < 5e-6, f"{best * 1e6:.2f} µs per route"
