"""The controller on a real store and a real MLflow: steps, promotion, rollback, alerts, pause."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from conveyor.deploy import (
    Controller,
    SyntheticResult,
    TickResult,
    pause_rollout,
    resume_rollout,
    start_deployment,
)
from conveyor.spec import AbRollout, BlueGreenRollout, CanaryRollout, ShadowRollout
from conveyor.store import MetadataStore

from .conftest import Clock, Versions, Webhook, write_stats

GUARDRAILS = {"error_rate": 0.05, "p99_latency_ms": 200, "min_requests": 20}
CANARY = CanaryRollout.model_validate(
    {
        "steps": [10, 50, 100],
        "min_requests_per_step": 100,
        "min_seconds_per_step": 60,
        "guardrails": GUARDRAILS,
    }
)


@pytest.fixture
def live(registry: Any, versions: Versions, request: pytest.FixtureRequest) -> Any:
    """v1 is the champion, v2 the version to roll out."""
    store: MetadataStore = request.getfixturevalue(
        "store" if "store" in request.fixturenames else "sqlite_store"
    )
    versions(2)
    registry.promote(1, reason="first", actor="me", store=store)
    return registry


def controller(store: MetadataStore, registry: Any, project: str, clock: Clock, **kw: Any) -> Any:
    return Controller(store, lambda: registry, project, CANARY, holder="c1", clock=clock, **kw)


def healthy(store: MetadataStore, project: str, at: datetime, requests: int = 150) -> None:
    """A step's worth of healthy traffic for both versions, in the window after ``at``."""
    window = at + timedelta(seconds=10)
    write_stats(store, project, 2, requests, at=window, errors=1, latency_ms=12)
    write_stats(store, project, 1, requests * 4, at=window, errors=2, latency_ms=10)


def test_a_healthy_canary_advances_step_by_step_and_promotes(
    store: MetadataStore, live: Any, project: str, clock: Clock
) -> None:
    start = start_deployment(
        store, live, project, CANARY, version=2, actor="a", reason="r", now=clock()
    )
    ctl = controller(store, live, project, clock)

    waiting = ctl.tick()
    assert (waiting.leader, waiting.applied, waiting.decision.action) == (True, False, "hold")
    assert "waiting for 0/100 requests and 0/60 s" in waiting.message
    healthy(store, project, clock())
    clock.advance(30)
    assert ctl.tick().decision.action == "hold"  # enough requests, not enough time

    for step, weights in ((1, {1: 50.0, 2: 50.0}), (2, {1: 0.0, 2: 100.0})):
        clock.advance(31 if step == 1 else 61)
        result = ctl.tick()
        assert (result.applied, result.decision.action) == (True, "advance")
        record = result.deployment
        assert (record.step, record.weights, record.step_started_at) == (step, weights, clock())
        # A new step is judged on its own traffic: what came before no longer counts.
        clock.advance(61)
        assert "waiting for 0/100 requests" in ctl.tick().message
        healthy(store, project, clock())

    clock.advance(61)
    done = ctl.tick()
    assert (done.applied, done.decision.action) == (True, "promote")
    assert str(done.deployment.state) == "promoted"
    assert done.deployment.weights == {1: 0.0, 2: 100.0}
    assert live.alias("champion").version == 2

    events = store.list_deployment_events(start.id)
    assert [e.kind for e in events] == ["created", "advanced", "advanced", "promoted"]
    assert {e.actor for e in events[1:]} == {"controller"}
    assert "→ advancing to 50%" in events[1].reason
    assert "error rate 0.667% (1/150) ≤ 5%" in events[1].reason
    assert events[1].metrics["challenger_requests"] == 150
    assert "→ promoting v2" in events[3].reason
    assert events[3].metrics["alias_moved"] is True
    actions = [(e.action, e.actor, e.target) for e in store.list_audit(limit=3)]
    assert actions[:2] == [
        ("rollout.promote", "controller", f"deployment:{start.id}"),
        ("promote", "controller", f"model:{project}/2"),
    ]
    assert ctl.tick().message == "no rollout in progress"


def test_a_breached_error_rate_rolls_back_at_once_and_alerts(
    store: MetadataStore, live: Any, project: str, clock: Clock, webhook: Webhook
) -> None:
    start = start_deployment(
        store, live, project, CANARY, version=2, actor="a", reason="r", now=clock()
    )
    refused = "http://127.0.0.1:9/nobody-listens"  # a failing webhook must not stop the rest
    ctl = controller(store, live, project, clock, alert_webhooks=[refused, webhook.url])
    assert ctl.tick().decision.action == "hold"

    write_stats(store, project, 2, 30, at=clock() + timedelta(seconds=10), errors=6)
    clock.advance(5)  # long before the step's 60 s: a breach does not wait
    result = ctl.tick()

    assert (result.applied, result.decision.action) == (True, "rollback")
    record = result.deployment
    assert (str(record.state), record.weights) == ("rolled_back", {1: 100.0, 2: 0.0})
    assert live.alias("champion").version == 1  # the alias is unchanged
    last = store.list_deployment_events(start.id)[-1]
    assert (last.kind, last.actor, last.metrics["guardrail"]) == (
        "rolled_back", "controller", "error_rate",
    )  # fmt: skip
    assert "error rate 20% (6/30) > 5%" in last.reason and "rolling back to v1" in last.reason
    [entry] = [e for e in store.list_audit(target=f"deployment:{start.id}") if e.actor != "a"]
    assert (entry.action, entry.details["guardrail"]) == ("rollout.rollback", "error_rate")

    [alert] = webhook.received
    assert alert["text"].startswith(f":rotating_light: Conveyor rolled back {project}: v2 → v1")
    assert (alert["event"], alert["deployment_id"], alert["guardrail"]) == (
        "rollback", start.id, "error_rate",
    )  # fmt: skip
    assert alert["metrics"]["challenger_errors"] == 6
    assert ctl.tick().message == "no rollout in progress"


def test_pause_stops_advancing_and_resume_restarts_the_step(
    store: MetadataStore, live: Any, project: str, clock: Clock
) -> None:
    start_deployment(store, live, project, CANARY, version=2, actor="a", reason="r", now=clock())
    ctl = controller(store, live, project, clock)
    paused = pause_rollout(store, project, actor="bo", reason="looking into a ticket")
    healthy(store, project, clock())
    clock.advance(3600)
    held = ctl.tick()
    assert (held.applied, held.decision.action) == (False, "none")
    assert "rollout is paused" in held.message
    assert store.active_deployment(project).version == paused.version

    resumed = resume_rollout(store, project, actor="bo", reason="ticket closed", now=clock())
    assert (str(resumed.state), resumed.step_started_at) == ("rolling", clock())
    clock.advance(61)
    assert "waiting for 0/100 requests" in ctl.tick().message  # the step starts over
    healthy(store, project, clock())
    assert ctl.tick().decision.action == "advance"
    kinds = [e.kind for e in store.list_deployment_events(resumed.id)]
    assert kinds == ["created", "paused", "resumed", "advanced"]
    audit = [e.action for e in store.list_audit(target=f"deployment:{resumed.id}")]
    assert audit == ["rollout.resume", "rollout.pause", "deploy"]


def test_a_shadow_is_judged_on_its_mirrored_predictions(
    sqlite_store: MetadataStore, live: Any, project: str, clock: Clock
) -> None:
    store = sqlite_store
    rollout = ShadowRollout.model_validate(
        {
            "policy": "shadow",
            "min_requests_per_step": 50,
            "min_seconds_per_step": 10,
            "min_agreement": 0.9,
            "guardrails": GUARDRAILS,
        }
    )
    start_deployment(store, live, project, rollout, version=2, actor="a", reason="r", now=clock())
    ctl = Controller(store, lambda: live, project, rollout, holder="c1", clock=clock)
    window = clock() + timedelta(seconds=10)
    write_stats(store, project, 1, 100, at=window)
    # Answered requests of v2 would not count: only the mirrored ones judge a shadow.
    write_stats(store, project, 2, 80, at=window, shadow=True, compared=80, agreed=76)
    clock.advance(11)
    result = ctl.tick()
    assert result.decision.action == "promote"
    assert "agreement 95% over 80 compared" in result.decision.reason
    assert (result.deployment.shadow_version, live.alias("champion").version) == (None, 2)


def test_blue_green_checks_the_real_model_with_synthetic_requests_then_switches(
    sqlite_store: MetadataStore, live: Any, project: str, clock: Clock, tmp_path: Any
) -> None:
    store = sqlite_store
    rollout = BlueGreenRollout.model_validate(
        {"policy": "blue_green", "synthetic_requests": 12, "bake_seconds": 30}
    )
    start = start_deployment(store, live, project, rollout, version=2, actor="a", reason="r")
    ctl = Controller(
        store, lambda: live, project, rollout, holder="c1", clock=clock, cache_dir=tmp_path / "m"
    )
    switched = ctl.tick()
    assert (switched.decision.action, switched.deployment.step) == ("advance", 1)
    assert switched.deployment.weights == {1: 0.0, 2: 100.0}
    assert "v2 answered 12 synthetic requests → switching all traffic to v2" in switched.message
    event = store.list_deployment_events(start.id)[-1]
    assert (event.metrics["synthetic_requests"], event.metrics["synthetic_failures"]) == (12, 0)
    assert (tmp_path / "m" / project / "2" / "input_example.json").is_file()


def test_a_version_that_fails_its_synthetic_requests_never_gets_traffic(
    sqlite_store: MetadataStore, live: Any, project: str, clock: Clock, tmp_path: Any
) -> None:
    store = sqlite_store
    # Files that differ from what was registered: the version cannot load, as on a replica.
    live.client.set_model_version_tag(project, "2", "conveyor.model_sha256", "0" * 64)
    rollout = BlueGreenRollout.model_validate({"policy": "blue_green", "synthetic_requests": 5})
    start_deployment(store, live, project, rollout, version=2, actor="a", reason="r")
    ctl = Controller(
        store, lambda: live, project, rollout, holder="c1", clock=clock, cache_dir=tmp_path / "m"
    )
    result = ctl.tick()
    assert (result.decision.action, result.decision.guardrail) == ("rollback", "synthetic")
    assert "v2 failed to load" in result.message and "sha256" in result.message
    assert result.deployment.weights == {1: 100.0, 2: 0.0}


def test_a_change_made_during_the_tick_wins_and_is_read_again(
    sqlite_store: MetadataStore, live: Any, project: str, clock: Clock
) -> None:
    store = sqlite_store
    rollout = BlueGreenRollout.model_validate({"policy": "blue_green", "synthetic_requests": 3})
    start_deployment(store, live, project, rollout, version=2, actor="a", reason="r")

    def check_while_someone_pauses(registry: Any, version: int, requests: int) -> SyntheticResult:
        pause_rollout(store, project, actor="bo", reason="hold on")
        return SyntheticResult(True, requests, 0, "fine")

    ctl = Controller(
        store, lambda: live, project, rollout, holder="c1", clock=clock,
        synthetic_check=check_while_someone_pauses,
    )  # fmt: skip
    result: TickResult = ctl.tick()
    assert (result.applied, result.decision.action) == (False, "advance")
    assert "changed meanwhile" in result.message
    record = store.active_deployment(project)
    assert (str(record.state), record.weights) == ("paused", {1: 100.0, 2: 0.0})
    assert ctl.tick().decision.action == "none"  # read again: paused


def test_without_auto_rollback_a_breach_holds_and_is_recorded_once(
    store: MetadataStore, live: Any, project: str, clock: Clock, webhook: Webhook
) -> None:
    rollout = CANARY.model_copy(update={"auto_rollback": False})
    start = start_deployment(store, live, project, rollout, version=2, actor="a", reason="r")
    ctl = Controller(
        store, lambda: live, project, rollout, holder="c1", clock=clock,
        alert_webhooks=[webhook.url],
    )  # fmt: skip
    write_stats(store, project, 2, 40, at=clock() + timedelta(seconds=10), errors=10)
    for _ in range(3):
        clock.advance(61)
        result = ctl.tick()
        assert (result.decision.action, result.decision.guardrail) == ("hold", "error_rate")
    assert "holding, as auto_rollback is off" in result.message
    events = store.list_deployment_events(start.id)
    assert [e.kind for e in events] == ["created", "guardrail"]  # not one per tick
    assert str(events[-1].to_state) == "rolling" and events[-1].weights == {1: 90.0, 2: 10.0}
    assert webhook.received == []  # nothing was rolled back


def test_a_pending_deployment_recorded_by_another_tool_is_started_with_its_mirror(
    sqlite_store: MetadataStore, live: Any, project: str, clock: Clock
) -> None:
    store = sqlite_store
    rollout = ShadowRollout.model_validate({"policy": "shadow", "sample_rate": 0.5})
    pending = store.create_deployment(
        project=project, champion_version=1, challenger_version=2, policy="shadow",
        config=rollout.model_dump(mode="json"), weights={1: 100.0}, actor="tool",
    )  # fmt: skip
    result = controller(store, live, project, clock).tick()
    assert result.decision.action == "advance"
    record = result.deployment
    assert (str(record.state), record.step_started_at) == ("rolling", clock())
    assert (record.shadow_version, record.shadow_rate) == (2, 0.5)
    assert record.weights == {1: 100.0, 2: 0.0}
    started = store.list_deployment_events(pending.id)[-1]
    assert (started.kind, started.from_state) == ("started", "pending")
    assert "mirroring 50% of requests to v2" in started.reason


def test_an_ab_test_is_decided_on_the_outcomes_replicas_report(
    sqlite_store: MetadataStore, live: Any, project: str, clock: Clock
) -> None:
    store = sqlite_store
    rollout = AbRollout.model_validate(
        {
            "policy": "ab",
            "metric": "converted",
            "sample_size": 100,
            "min_requests_per_step": 50,
            "min_seconds_per_step": 10,
            "guardrails": GUARDRAILS,
        }
    )
    start = start_deployment(
        store, live, project, rollout, version=2, actor="a", reason="r", now=clock()
    )
    assert start.weights == {1: 50.0, 2: 50.0}
    ctl = Controller(store, lambda: live, project, rollout, holder="c1", clock=clock)
    window = clock() + timedelta(seconds=10)
    healthy(store, project, clock(), requests=200)
    clock.advance(11)
    assert "waiting for outcomes: 0 (v2) and 0 (v1)" in ctl.tick().message
    # Two replicas report 0/1 outcomes: v1 converts 30 %, v2 70 %.
    for replica in ("r1", "r2"):
        for version, successes in ((1, 15), (2, 35)):
            outcomes = {"outcome_n": 50, "outcome_sum": successes, "outcome_sum_sq": successes}
            write_stats(store, project, version, 0, at=window, replica=replica, **outcomes)
    clock.advance(1)
    result = ctl.tick()
    assert (result.applied, result.decision.action) == (True, "promote"), result.message
    assert "v2 is better" in result.decision.reason
    metrics = store.list_deployment_events(start.id)[-1].metrics
    assert (metrics["n_champion"], metrics["n_challenger"]) == (100, 100)
    assert metrics["effect"] == pytest.approx(0.4) and metrics["p_value"] < 0.05
    assert 0 < metrics["ci_low"] < metrics["ci_high"]
    assert live.alias("champion").version == 2
