"""Monitoring runs, retraining triggers and alerts, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.errors import RecordNotFoundError
from conveyor.store import MetadataStore

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def test_monitor_runs_come_back_newest_first_by_kind_and_time(
    store: MetadataStore, unique: str
) -> None:
    first = store.add_monitor_run(
        unique,
        "drift",
        rows=10_000,
        flagged=False,
        score=0.1,
        summary={"columns": {"temp": {"value": 0.05}}},
        artifacts={"json": "ab" * 32},
        model_version=1,
        window_start=T0,
        window_end=T0 + timedelta(minutes=5),
        created_at=T0 + timedelta(minutes=5),
    )
    second = store.add_monitor_run(
        unique, "drift", rows=10_000, flagged=True, score=0.6, created_at=T0 + timedelta(hours=1)
    )
    quality = store.add_monitor_run(
        unique, "quality", rows=800, flagged=False, score=0.71, created_at=T0 + timedelta(hours=2)
    )
    store.add_monitor_run(f"{unique}-other", "drift", rows=1, flagged=True, score=None)

    assert [r.id for r in store.list_monitor_runs(unique)] == [quality.id, second.id, first.id]
    assert [r.id for r in store.list_monitor_runs(unique, kind="drift")] == [second.id, first.id]
    assert [r.id for r in store.list_monitor_runs(unique, kind="drift", limit=1)] == [second.id]
    since = store.list_monitor_runs(unique, since=T0 + timedelta(minutes=30))
    assert [r.id for r in since] == [quality.id, second.id]
    (read,) = store.list_monitor_runs(unique, kind="drift", since=T0, limit=5)[1:]
    assert read == first
    assert read.summary == {"columns": {"temp": {"value": 0.05}}}
    assert read.window_end == T0 + timedelta(minutes=5)


def test_monitor_runs_reject_what_could_not_be_read_back(store: MetadataStore) -> None:
    with pytest.raises(ValueError, match="finite"):
        store.add_monitor_run("p", "drift", rows=1, flagged=False, score=math.nan)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.add_monitor_run(
            "p", "drift", rows=1, flagged=False, score=None, window_start=datetime(2026, 1, 1)
        )
    with pytest.raises(ValueError, match="non-negative"):
        store.add_monitor_run("p", "drift", rows=-1, flagged=False, score=None)


def test_a_trigger_records_its_run_and_outcome(store: MetadataStore, unique: str) -> None:
    trigger = store.add_retrain_trigger(
        unique, "drift", "3 drifted windows in a row", {"monitor_runs": ["a", "b", "c"]}
    )
    assert trigger.status == "pending"
    assert trigger.run_id is None
    running = store.update_retrain_trigger(trigger.id, status="running", run_id="run-1")
    assert (running.status, running.run_id, running.reason) == (
        "running",
        "run-1",
        "3 drifted windows in a row",
    )
    done = store.update_retrain_trigger(
        trigger.id,
        status="succeeded",
        model_version=4,
        deployment_id="d" * 32,
        message="rolled out",
        finished_at=T0,
    )
    assert store.get_retrain_trigger(trigger.id) == done
    assert done.run_id == "run-1"  # unchanged fields keep their values
    assert done.details == {"monitor_runs": ["a", "b", "c"]}
    later = store.add_retrain_trigger(unique, "schedule", "cron 0 3 * * 1")
    assert [t.id for t in store.list_retrain_triggers(unique)] == [later.id, trigger.id]
    with pytest.raises(ValueError, match="status must be one of"):
        store.update_retrain_trigger(trigger.id, status="done")
    with pytest.raises(RecordNotFoundError):
        store.update_retrain_trigger("f" * 32, status="failed")


def test_an_alert_notifies_when_it_starts_firing_and_again_after_resolution(
    store: MetadataStore, unique: str
) -> None:
    alert, notify = store.raise_alert(unique, "r1", "drift", "dataset", {"share": 0.5}, now=T0)
    assert notify
    assert (alert.state, alert.count, alert.notified_at) == ("firing", 1, T0)
    for minutes in (1, 2):
        again, notify = store.raise_alert(
            unique, "r1", "drift", "dataset", {"share": 0.6}, now=T0 + timedelta(minutes=minutes)
        )
        assert not notify
    assert (again.count, again.payload, again.notified_at) == (3, {"share": 0.6}, T0)

    resolved = store.resolve_alert(unique, "r1", "dataset", now=T0 + timedelta(minutes=3))
    assert resolved is not None
    assert resolved.state == "resolved"
    assert store.resolve_alert(unique, "r1", "dataset") is None  # not firing any more

    back, notify = store.raise_alert(
        unique, "r1", "drift", "dataset", {}, now=T0 + timedelta(minutes=4)
    )
    assert notify
    assert (back.count, back.first_at, back.resolved_at) == (1, T0 + timedelta(minutes=4), None)
    assert store.list_alerts(unique, state="firing") == [back]
    assert store.list_alerts(unique, state="resolved") == []


def test_a_firing_alert_is_renotified_after_the_period(store: MetadataStore, unique: str) -> None:
    hour = timedelta(hours=1)
    store.raise_alert(unique, "r", "latency", "version 2", {}, renotify_after=hour, now=T0)
    _, soon = store.raise_alert(
        unique, "r", "latency", "version 2", {}, renotify_after=hour, now=T0 + hour / 2
    )
    _, late = store.raise_alert(
        unique, "r", "latency", "version 2", {}, renotify_after=hour, now=T0 + hour
    )
    assert (soon, late) == (False, True)
    _, notify = store.raise_alert(unique, "r", "latency", "version 3", {}, now=T0)
    assert notify  # another subject is another alert
    assert len(store.list_alerts(unique)) == 2
    with pytest.raises(ValueError, match="state must be one of"):
        store.list_alerts(unique, state="open")
