"""Two controllers at once: only the lease holder acts; a standby takes over when it stops."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from conveyor.deploy import Controller, start_deployment
from conveyor.spec import CanaryRollout
from conveyor.store import MetadataStore

from .conftest import Clock, Versions, write_stats

ROLLOUT = CanaryRollout.model_validate(
    {"steps": [20, 100], "min_requests_per_step": 50, "min_seconds_per_step": 0}
)


def rolling(
    store: MetadataStore, registry: Any, versions: Versions, project: str, clock: Clock
) -> None:
    versions(2)
    registry.promote(1, reason="first", actor="me", store=store)
    start_deployment(
        store, registry, project, ROLLOUT, version=2, actor="a", reason="r", now=clock()
    )


def traffic(store: MetadataStore, project: str, clock: Clock) -> None:
    write_stats(store, project, 2, 60, at=clock() + timedelta(seconds=10))
    clock.advance(20)  # past that window: the next step starts after it


def test_only_the_lease_holder_acts_and_a_standby_takes_over_when_it_stops(
    store: MetadataStore, registry: Any, versions: Versions, project: str, clock: Clock
) -> None:
    rolling(store, registry, versions, project, clock)
    first = Controller(store, lambda: registry, project, ROLLOUT, holder="first", clock=clock)
    second = Controller(store, lambda: registry, project, ROLLOUT, holder="second", clock=clock)
    assert first.lease_name == second.lease_name == f"controller:{project}"

    assert first.tick().leader
    traffic(store, project, clock)  # the step has held: whoever acts would advance it
    before = store.active_deployment(project)
    standby = second.tick()
    assert (standby.leader, standby.applied, standby.decision) == (False, False, None)
    assert standby.message == "standing by: first holds the lease"
    assert store.active_deployment(project) == before  # nothing changed, not even the version

    advanced = first.tick()
    assert (advanced.applied, advanced.deployment.step) == (True, 1)
    assert first.release()
    assert store.lease_holder(first.lease_name) is None

    traffic(store, project, clock)
    took_over = second.tick()
    assert (took_over.leader, took_over.decision.action) == (True, "promote")
    assert store.lease_holder(second.lease_name) == "second"
    assert not first.tick().leader  # the first one now stands by in turn
    assert registry.alias("champion").version == 2


def test_a_standby_takes_over_when_the_holder_dies_and_its_lease_expires(
    store: MetadataStore, registry: Any, versions: Versions, project: str, clock: Clock
) -> None:
    rolling(store, registry, versions, project, clock)
    options = {"clock": clock, "interval_s": 0.2, "lease_ttl_s": 1.0}
    dead = Controller(store, lambda: registry, project, ROLLOUT, holder="dead", **options)
    alive = Controller(store, lambda: registry, project, ROLLOUT, holder="alive", **options)
    assert dead.tick().leader  # ... and then it never ticks again, nor releases
    traffic(store, project, clock)
    assert not alive.tick().leader
    time.sleep(1.2)
    result = alive.tick()
    assert (result.leader, result.applied, result.deployment.step) == (True, True, 1)


def test_run_loops_until_stopped_then_releases_the_lease(
    store: MetadataStore, registry: Any, versions: Versions, project: str, clock: Clock
) -> None:
    rolling(store, registry, versions, project, clock)
    traffic(store, project, clock)
    reports: list[str] = []
    ctl = Controller(
        store, lambda: registry, project, ROLLOUT, holder="loop", clock=clock, interval_s=0.05,
        report=reports.append,
    )  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=ctl.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while store.active_deployment(project).step == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        traffic(store, project, clock)
        while store.active_deployment(project) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert str(store.latest_deployment(project).state) == "promoted"
    assert store.lease_holder(ctl.lease_name) is None
    assert reports[0] == f"holds the lease controller:{project} as loop"
    assert [line.split(":")[0] for line in reports[1:3]] == ["advance", "promote"]
    assert reports[-1] == f"released the lease controller:{project}"


def test_a_failing_tick_is_logged_and_the_loop_goes_on(
    store: MetadataStore, registry: Any, versions: Versions, project: str, clock: Clock
) -> None:
    rolling(store, registry, versions, project, clock)
    traffic(store, project, clock)
    calls = []

    def broken_registry() -> Any:
        calls.append(1)
        raise RuntimeError("MLflow is down")

    ctl = Controller(
        store, broken_registry, project, ROLLOUT, holder="x", clock=clock, interval_s=0.05
    )
    stop = threading.Event()
    thread = threading.Thread(target=ctl.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 30
    while store.active_deployment(project).step == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    traffic(store, project, clock)  # the promotion needs the registry, which keeps failing
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(10)
    assert len(calls) >= 3  # it kept trying, tick after tick
    record = store.active_deployment(project)
    assert (str(record.state), record.step) == ("rolling", 1)  # nothing half-done
    assert registry.alias("champion").version == 1
