"""``rollout:`` fields the policies read: A/B test design, blue-green bake, shadow criteria."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor.spec import (
    AbRollout,
    BlueGreenRollout,
    CanaryRollout,
    Direction,
    LoadedSpec,
    ShadowRollout,
)

Parse = Callable[..., LoadedSpec]
Problems = Callable[..., list[str]]


def rollout(parse: Parse, body: str) -> object:
    return parse(f"name: d\nrollout: {body}\n").spec.rollout


def test_existing_rollout_specs_keep_their_meaning(parse: Parse) -> None:
    canary = rollout(parse, "{steps: [10, 100], guardrails: {error_rate: 0.05}}")
    assert isinstance(canary, CanaryRollout)
    assert canary.guardrails.min_requests == 20
    blue_green = rollout(parse, "{policy: blue_green, min_seconds_per_step: 120}")
    assert isinstance(blue_green, BlueGreenRollout)
    assert blue_green.synthetic_requests == 20 and blue_green.bake_seconds is None
    ab = rollout(parse, "{policy: ab, split: 20}")
    assert isinstance(ab, AbRollout)
    assert (ab.metric, ab.test, ab.alpha, ab.power) == ("accuracy", "two_proportion", 0.05, 0.8)
    assert ab.sample_size is None and ab.baseline_rate is None and ab.promote_if == "not_worse"
    assert ab.sticky_header is None and ab.sticky_field is None and ab.higher_is_better
    shadow = rollout(parse, "{policy: shadow, sample_rate: 0.5}")
    assert isinstance(shadow, ShadowRollout)
    assert shadow.min_agreement is None and shadow.max_mean_abs_diff is None


def test_an_ab_test_design_is_read(parse: Parse) -> None:
    ab = rollout(
        parse,
        "{policy: ab, metric: converted, test: sequential, alpha: 0.01, power: 0.9, "
        "minimum_detectable_effect: 0.005, baseline_rate: 0.03, sample_size: 50000, "
        "promote_if: better, sticky_header: X-User-Id, sticky_field: user_id}",
    )
    assert isinstance(ab, AbRollout)
    assert ab.metric == "converted" and ab.test == "sequential"
    assert (ab.alpha, ab.power, ab.minimum_detectable_effect) == (0.01, 0.9, 0.005)
    assert (ab.baseline_rate, ab.sample_size, ab.promote_if) == (0.03, 50000, "better")
    assert ab.sticky_header == "x-user-id"  # headers are matched case-insensitively
    assert ab.sticky_field == "user_id"


@pytest.mark.parametrize(
    ("body", "higher_is_better"),
    [
        ("{policy: ab}", True),
        ("{policy: ab, metric: absolute_error, test: welch}", False),
        ("{policy: ab, metric: squared_error, test: sequential}", False),
        ("{policy: ab, metric: latency_ms, test: welch, direction: minimize}", False),
        ("{policy: ab, metric: absolute_error, test: welch, direction: maximize}", True),
    ],
)
def test_the_outcome_direction_defaults_from_the_metric(
    parse: Parse, body: str, higher_is_better: bool
) -> None:
    ab = rollout(parse, body)
    assert isinstance(ab, AbRollout) and ab.higher_is_better is higher_is_better
    if "direction" in body:
        assert ab.direction in set(Direction)


def test_a_two_proportion_test_of_an_error_metric_is_refused(problems: Problems) -> None:
    lines = problems("name: d\nrollout: {policy: ab, metric: absolute_error}\n")
    assert lines[1:] == [
        "  line 2: rollout.test: the two_proportion test compares shares of 0/1 outcomes, "
        "but 'absolute_error' is a continuous error; use test: welch or test: sequential"
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{policy: ab, alpha: 0}", "rollout.alpha: expected a number greater than 0.0, found 0"),
        ("{policy: ab, alpha: 0.6}", "rollout.alpha: expected a number of at most 0.5"),
        ("{policy: ab, power: 1}", "rollout.power: expected a number less than 1.0, found 1"),
        ("{policy: ab, test: bayes}", "rollout.test: expected one of 'two_proportion', 'welch'"),
        ("{policy: ab, baseline_rate: 1}", "rollout.baseline_rate: expected a number less than"),
        ("{policy: ab, sample_size: 1}", "rollout.sample_size: expected a number of at least 2"),
        (
            "{policy: ab, minimum_detectable_effect: 0}",
            "rollout.minimum_detectable_effect: expected a number greater than 0",
        ),
        ("{policy: ab, promote_if: always}", "rollout.promote_if: expected one of 'not_worse'"),
        ("{policy: ab, direction: up}", "rollout.direction: expected one of 'maximize'"),
        ("{policy: blue_green, bake_seconds: -1}", "rollout.bake_seconds: expected a number of"),
        (
            "{policy: blue_green, synthetic_requests: -1}",
            "rollout.synthetic_requests: expected a number of at least 0",
        ),
        ("{policy: shadow, min_agreement: 1.5}", "rollout.min_agreement: expected a number of"),
        ("{policy: shadow, max_mean_abs_diff: -1}", "rollout.max_mean_abs_diff: expected a"),
        (
            "{guardrails: {min_requests: 0}}",
            "rollout.guardrails.min_requests: expected a number of at least 1, found 0",
        ),
    ],
)
def test_out_of_range_values_name_their_key(problems: Problems, body: str, problem: str) -> None:
    lines = problems(f"name: d\nrollout: {body}\n")
    assert len(lines) == 2 and problem in lines[1], lines


def test_keys_of_one_policy_are_unknown_to_another(problems: Problems) -> None:
    lines = problems("name: d\nrollout: {policy: canary, bake_seconds: 60}\n")
    assert "rollout.bake_seconds: unknown key 'bake_seconds'" in lines[1]
    lines = problems("name: d\nrollout: {policy: shadow, sticky_header: x-user}\n")
    assert "rollout.sticky_header: unknown key 'sticky_header'" in lines[1]


def test_new_fields_round_trip_through_json(parse: Parse) -> None:
    spec = parse(
        "name: d\nrollout: {policy: ab, test: welch, metric: absolute_error, sample_size: 400}\n"
    ).spec
    dumped = spec.model_dump(mode="json", by_alias=True)
    assert type(spec).model_validate(dumped) == spec
    assert "higher_is_better" not in dumped["rollout"]  # derived, not a key
