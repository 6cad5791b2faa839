"""When a retrain is due: debounce over monitoring windows, cooldown, cron schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.monitor._retrain import RetrainDecision, covers_schedule, decide_retrain, next_fire
from conveyor.spec import RetrainSpec
from conveyor.store import MonitorRunRecord, RetrainTriggerRecord

NOW = datetime(2024, 3, 4, 12, 30, tzinfo=UTC)  # a Monday


def window(minutes_ago: float, flagged: bool, kind: str = "drift", score: float = 0.5) -> Any:
    return MonitorRunRecord(
        id=f"{kind}-{minutes_ago:g}",
        project="p",
        kind=kind,
        created_at=NOW - timedelta(minutes=minutes_ago),
        model_version=1,
        window_start=None,
        window_end=None,
        rows=100,
        flagged=flagged,
        score=score,
    )


def trigger(minutes_ago: float, kind: str = "drift", **details: Any) -> RetrainTriggerRecord:
    return RetrainTriggerRecord(
        id=f"t-{minutes_ago:g}",
        project="p",
        kind=kind,
        reason="because",
        details=details,
        created_at=NOW - timedelta(minutes=minutes_ago),
        status="succeeded",
        run_id=None,
        model_version=None,
        deployment_id=None,
        finished_at=None,
        message=None,
    )


def decide(spec: dict[str, Any], **kwargs: Any) -> RetrainDecision | None:
    kwargs.setdefault("schedule_anchor", NOW - timedelta(minutes=1))
    return decide_retrain(RetrainSpec.model_validate(spec), now=NOW, **kwargs)


DRIFT3 = {"on": ["drift"], "debounce_windows": 3, "cooldown": "1h"}


def test_event_fires_after_k_consecutive_flagged_windows() -> None:
    runs = [window(30, True), window(20, True, score=0.4), window(10, True, score=0.6)]
    decision = decide(DRIFT3, drift_runs=runs)
    assert decision is not None and not decision.skipped
    assert decision.kind == "drift"
    assert "3 consecutive" in decision.reason and "0.5, 0.4, 0.6" in decision.reason
    assert decision.details["monitor_runs"] == ["drift-10", "drift-20", "drift-30"]
    assert "cron" not in decision.details


def test_fewer_than_k_flagged_windows_do_not_fire() -> None:
    assert decide(DRIFT3, drift_runs=[window(20, True), window(10, True)]) is None


def test_an_unflagged_window_in_between_resets_the_count() -> None:
    runs = [window(40, True), window(30, True), window(20, False), window(10, True)]
    assert decide(DRIFT3, drift_runs=runs) is None
    # Two more flagged windows after the calm one make three consecutive again.
    more = [*runs, window(5, True), window(2, True)]
    assert decide(DRIFT3, drift_runs=more) is not None


def test_windows_before_the_last_trigger_do_not_count_twice() -> None:
    runs = [window(100, True), window(90, True), window(80, True), window(10, True)]
    last = trigger(85)  # fired on the first windows; cooldown (1h) is over
    assert decide(DRIFT3, drift_runs=runs, last_trigger=last) is None
    later = [*runs, window(5, True), window(1, True)]
    decision = decide(DRIFT3, drift_runs=later, last_trigger=last)
    assert decision is not None
    assert decision.details["monitor_runs"] == ["drift-1", "drift-5", "drift-10"]


def test_cooldown_holds_events_back_without_recording_them() -> None:
    runs = [window(3, True), window(2, True), window(1, True)]
    assert decide(DRIFT3, drift_runs=runs, last_trigger=trigger(50)) is None
    # The same windows fire once the cooldown is over (they are newer than the trigger).
    old = trigger(61)
    runs = [window(3, True), window(2, True), window(1, True)]
    assert decide(DRIFT3, drift_runs=runs, last_trigger=old) is not None


def test_quality_drop_reads_quality_windows_and_both_events_make_one_trigger() -> None:
    spec = {"on": ["drift", "quality_drop"], "debounce_windows": 2}
    quality = [window(2, True, "quality", 0.71), window(1, True, "quality", 0.69)]
    alone = decide(spec, quality_runs=quality, drift_runs=[window(1, False)])
    assert alone is not None and alone.kind == "quality_drop"
    assert "quality 0.71, 0.69" in alone.reason
    both = decide(spec, quality_runs=quality, drift_runs=[window(2, True), window(1, True)])
    assert both is not None and both.kind == "drift"
    assert both.details["events"] == ["drift", "quality_drop"]
    assert len(both.details["monitor_runs"]) == 4
    assert "drift" in both.reason and "quality drop" in both.reason


def test_events_not_listed_under_on_are_ignored() -> None:
    spec = {"on": ["quality_drop"], "debounce_windows": 1}
    assert decide(spec, drift_runs=[window(1, True)]) is None


def test_schedule_is_due_when_a_fire_time_lies_between_anchor_and_now() -> None:
    spec = {"schedule": "0 12 * * *"}  # daily at 12:00 UTC
    due = decide(spec, schedule_anchor=NOW - timedelta(hours=1))
    assert due is not None and due.kind == "schedule" and not due.skipped
    assert due.details["cron"] == "0 12 * * *"
    assert due.details["fire_at"] == "2024-03-04T12:00:00+00:00"
    assert due.details["missed_fires"] is False
    # Anchored after today's fire (it was served): not due again until tomorrow.
    assert decide(spec, schedule_anchor=NOW - timedelta(minutes=20)) is None
    assert next_fire("0 12 * * *", NOW) == datetime(2024, 3, 5, 12, tzinfo=UTC)


def test_a_fire_time_exactly_now_is_due_and_not_again_after() -> None:
    spec = {"schedule": "30 12 * * *"}
    assert decide(spec, schedule_anchor=NOW - timedelta(seconds=1)) is not None
    assert decide(spec, schedule_anchor=NOW) is None


def test_missed_fires_fire_once_with_the_latest_fire_time() -> None:
    spec = {"schedule": "@hourly"}
    decision = decide(spec, schedule_anchor=NOW - timedelta(days=3))
    assert decision is not None
    assert decision.details["fire_at"] == "2024-03-04T12:00:00+00:00"
    assert decision.details["missed_fires"] is True


def test_schedule_firing_during_cooldown_is_skipped() -> None:
    spec = {"schedule": "0 12 * * *", "cooldown": "6h"}
    decision = decide(spec, schedule_anchor=NOW - timedelta(hours=1), last_trigger=trigger(120))
    assert decision is not None and decision.skipped and decision.kind == "schedule"
    assert "cooldown" in decision.reason and "4h00m left of 6h00m" in decision.reason


def test_event_and_schedule_due_together_make_one_trigger_that_serves_the_schedule() -> None:
    spec = {"schedule": "0 12 * * *", "on": ["drift"]}
    decision = decide(spec, drift_runs=[window(1, True)], schedule_anchor=NOW - timedelta(hours=1))
    assert decision is not None and decision.kind == "drift"
    assert decision.details["cron"] == "0 12 * * *"
    served = trigger(0, decision.kind, **decision.details)
    assert covers_schedule(served)
    assert not covers_schedule(trigger(0, "drift", monitor_runs=["x"]))
    assert covers_schedule(trigger(0, "schedule"))
