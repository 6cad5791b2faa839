"""Starting deployments: the record each policy begins with, direct switches, clear refusals."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.deploy import RolloutError, start_deployment
from conveyor.errors import ModelVersionNotFoundError
from conveyor.spec import CanaryRollout, ShadowRollout
from conveyor.store import MetadataStore

from .conftest import Clock, Versions

CANARY = CanaryRollout.model_validate(
    {"steps": [10, 50, 100], "min_seconds_per_step": 30, "guardrails": {"error_rate": 0.02}}
)


def champion_and_challenger(registry: Any, store: MetadataStore, versions: Versions) -> None:
    versions(2)
    registry.promote(1, reason="first", actor="me", store=store)
    registry.set_challenger(2, reason="gate passed", actor="me", store=store)


@pytest.mark.parametrize(
    ("policy", "weights", "shadow"),
    [
        ("canary", {1: 90.0, 2: 10.0}, None),
        ("blue_green", {1: 100.0, 2: 0.0}, None),
        ("ab", {1: 50.0, 2: 50.0}, None),
        ("shadow", {1: 100.0, 2: 0.0}, (2, 1.0)),
    ],
)
def test_each_policy_starts_rolling_at_its_first_step(
    store: MetadataStore,
    registry: Any,
    versions: Versions,
    project: str,
    clock: Clock,
    policy: str,
    weights: dict[int, float],
    shadow: tuple[int, float] | None,
) -> None:
    champion_and_challenger(registry, store, versions)
    record = start_deployment(
        store, registry, project, CANARY, policy=policy, actor="ana", reason="gate passed",
        now=clock(),
    )  # fmt: skip

    assert (record.champion_version, record.challenger_version) == (1, 2)  # challenger alias
    assert (str(record.policy), str(record.state), record.step) == (policy, "rolling", 0)
    assert record.weights == weights
    assert (record.shadow_version, record.shadow_rate) == (shadow or (None, 0.0))
    assert record.step_started_at == clock()
    # The steps and guardrails of the spec carry over to an overriding policy.
    assert record.config["policy"] == policy
    assert record.config["min_seconds_per_step"] == 30
    assert record.config["guardrails"]["error_rate"] == 0.02
    [created] = store.list_deployment_events(record.id)
    assert (created.kind, created.actor, created.reason) == ("created", "ana", "gate passed")
    assert "starting" in created.metrics["plan"]
    [entry] = store.list_audit(target=f"deployment:{record.id}")
    assert (entry.action, entry.actor, entry.reason) == ("deploy", "ana", "gate passed")
    assert registry.alias("champion").version == 1  # a rollout never moves the alias at once


def test_shadow_mirrors_its_sample_rate(
    sqlite_store: MetadataStore, registry: Any, versions: Versions, project: str
) -> None:
    champion_and_challenger(registry, sqlite_store, versions)
    rollout = ShadowRollout.model_validate({"policy": "shadow", "sample_rate": 0.25})
    record = start_deployment(sqlite_store, registry, project, rollout, actor="a", reason="r")
    assert (record.shadow_version, record.shadow_rate) == (2, 0.25)


def test_direct_moves_the_alias_and_records_a_finished_deployment(
    store: MetadataStore, registry: Any, versions: Versions, project: str
) -> None:
    champion_and_challenger(registry, store, versions)
    record = start_deployment(
        store, registry, project, CANARY, version="2", policy="direct", actor="ana", reason="hotfix"
    )
    assert str(record.policy) == "direct" and str(record.state) == "promoted"
    assert (record.champion_version, record.challenger_version) == (1, 2)
    assert record.weights == {1: 0.0, 2: 100.0}
    assert registry.alias("champion").version == 2
    assert registry.alias("challenger") is None
    assert store.active_deployment(project) is None
    assert store.latest_deployment(project) == record  # replicas follow the newest deployment


def test_direct_puts_a_first_version_live(
    sqlite_store: MetadataStore, registry: Any, versions: Versions, project: str
) -> None:
    versions(1)
    with pytest.raises(RolloutError, match=r"no champion to roll v1 out against.*--policy direct"):
        start_deployment(sqlite_store, registry, project, CANARY, version=1, actor="a", reason="r")
    record = start_deployment(
        sqlite_store, registry, project, CANARY, version=1, policy="direct", actor="a", reason="r"
    )
    assert (record.champion_version, record.challenger_version) == (1, None)
    assert record.weights == {1: 100.0}
    assert registry.alias("champion").version == 1


def test_refusals_say_what_is_wrong_and_what_to_do(
    sqlite_store: MetadataStore, registry: Any, versions: Versions, project: str
) -> None:
    store = sqlite_store
    versions(3)
    registry.promote(1, reason="first", actor="me", store=store)
    with pytest.raises(RolloutError, match="no challenger alias; name the version to deploy"):
        start_deployment(store, registry, project, CANARY, actor="a", reason="r")
    with pytest.raises(RolloutError, match=r"version 1 of .* already is the champion"):
        start_deployment(store, registry, project, CANARY, version=1, actor="a", reason="r")
    with pytest.raises(ModelVersionNotFoundError, match="no version '9'"):
        start_deployment(store, registry, project, CANARY, version="9", actor="a", reason="r")
    with pytest.raises(RolloutError, match="unknown rollout policy 'linear'"):
        start_deployment(
            store, registry, project, CANARY, version=2, policy="linear", actor="a", reason="r"
        )
    with pytest.raises(RolloutError, match="a reason is required"):
        start_deployment(store, registry, project, CANARY, version=2, actor="a", reason=" ")

    first = start_deployment(store, registry, project, CANARY, version=2, actor="a", reason="r")
    with pytest.raises(RolloutError) as refused:
        start_deployment(store, registry, project, CANARY, version=3, actor="b", reason="r")
    message = str(refused.value)
    assert f"already has a rollout in progress: deployment {first.id[:8]}" in message
    assert "canary of v2 against v1, rolling" in message
    assert "conveyor rollout abort --reason TEXT" in message
    # A direct switch must wait too: replicas follow the newest deployment.
    with pytest.raises(RolloutError, match="already has a rollout in progress"):
        start_deployment(
            store, registry, project, CANARY, version=3, policy="direct", actor="b", reason="r"
        )
    assert registry.alias("champion").version == 1
    assert [d.id for d in store.list_deployments(project)] == [first.id]
