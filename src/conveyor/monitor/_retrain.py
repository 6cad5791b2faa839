"""When to retrain: the pure decision behind ``monitor.retrain`` (debounce, cooldown, cron).

:func:`decide_retrain` looks at the newest monitoring windows, the newest retraining trigger
and the schedule, and says whether a retraining run starts now, and why. It reads no clock and
no store, so every rule below is a plain function of its arguments:

* **Debounce** — an event (``drift``, ``quality_drop``) holds when the newest
  ``debounce_windows`` monitoring runs of its kind are all flagged *and* all newer than the
  last trigger. An unflagged window resets the count, and windows that already led to a
  retrain (or that judged the model a retrain has since replaced) never count twice.
* **Cooldown** — no retrain starts while the newest trigger (of any kind, except skipped
  ones) is younger than ``cooldown``. An event that holds during the cooldown is not
  recorded: it is judged again on every tick, and fires once the cooldown is over if its
  windows still hold. A schedule that fires during the cooldown is a discrete event that would
  otherwise vanish silently, so it is returned as *skipped*: the caller records it (status
  ``skipped``) and the schedule waits for its next fire time.
* **Schedule** — due when a fire time of the cron expression (UTC) lies in ``(anchor, now]``,
  ``anchor`` being the last trigger that covered the schedule, or the controller's start.
  Fire times missed while no controller ran fire once, not once each.

When an event and the schedule are due together one retrain covers both: the trigger takes the
event's kind, and its details carry the cron expression, so the schedule counts as served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from conveyor.spec import RetrainSpec
    from conveyor.store import MonitorRunRecord, RetrainTriggerRecord

__all__ = [
    "MONITOR_KINDS",
    "SCHEDULE",
    "RetrainDecision",
    "covers_schedule",
    "decide_retrain",
    "next_fire",
]

SCHEDULE: Final = "schedule"
MONITOR_KINDS: Final = {"drift": "drift", "quality_drop": "quality"}
"""The monitoring-run kind each retraining event reads (``quality_drop`` reads ``quality``)."""

_CRON_KEY: Final = "cron"


@dataclass(frozen=True)
class RetrainDecision:
    """A retrain to start now (or, ``skipped``, a scheduled one the cooldown held back).

    Attributes:
        kind: ``schedule``, ``drift`` or ``quality_drop``.
        reason: One line on why, with the numbers.
        details: JSON evidence: the monitoring run ids, the cron expression and fire time.
        skipped: A schedule fired during the cooldown: record it, start nothing.
    """

    kind: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False


def decide_retrain(
    spec: RetrainSpec,
    *,
    now: datetime,
    drift_runs: Sequence[MonitorRunRecord] = (),
    quality_runs: Sequence[MonitorRunRecord] = (),
    last_trigger: RetrainTriggerRecord | None = None,
    schedule_anchor: datetime,
) -> RetrainDecision | None:
    """Whether a retrain starts now; None when nothing is due (or an event waits out a cooldown).

    Args:
        spec: The spec's ``monitor.retrain``.
        now: The current time (aware).
        drift_runs: The newest ``drift`` monitoring runs, in any order (at least
            ``debounce_windows`` of them for the event to be able to hold).
        quality_runs: The newest ``quality`` monitoring runs, likewise.
        last_trigger: The newest trigger that was not skipped, whatever became of it; a failed
            retrain counts too, so a crashing pipeline is not restarted on every tick.
        schedule_anchor: The last time the schedule was served (see :func:`covers_schedule`),
            or the controller's start.

    Returns:
        The decision, or None.
    """
    cooling = _cooldown_left(spec.cooldown, now, last_trigger)
    fire = None if spec.schedule is None else _due_fire(spec.schedule, schedule_anchor, now)
    if cooling is not None:
        if fire is None or spec.schedule is None:
            return None
        return RetrainDecision(
            SCHEDULE,
            f"schedule '{spec.schedule}' fired at {fire:%Y-%m-%d %H:%M} UTC during the cooldown "
            f"({_human(cooling)} left of {_human(spec.cooldown)}); skipped",
            _schedule_details(spec.schedule, fire, schedule_anchor),
            skipped=True,
        )
    since = None if last_trigger is None else last_trigger.created_at
    held = []
    runs = {"drift": drift_runs, "quality_drop": quality_runs}
    for event in spec.on:
        found = _debounced(str(event), runs[str(event)], spec.debounce_windows, since)
        if found is not None:
            held.append(found)
    if held:
        kinds = [kind for kind, _, _ in held]
        details: dict[str, Any] = {
            "events": kinds,
            "monitor_runs": [run_id for _, _, ids in held for run_id in ids],
            "windows": spec.debounce_windows,
        }
        if fire is not None and spec.schedule is not None:
            details |= _schedule_details(spec.schedule, fire, schedule_anchor)
        return RetrainDecision(kinds[0], "; ".join(reason for _, reason, _ in held), details)
    if fire is not None and spec.schedule is not None:
        return RetrainDecision(
            SCHEDULE,
            f"schedule '{spec.schedule}' fired at {fire:%Y-%m-%d %H:%M} UTC",
            _schedule_details(spec.schedule, fire, schedule_anchor),
        )
    return None


def covers_schedule(trigger: RetrainTriggerRecord) -> bool:
    """Whether ``trigger`` served the schedule (a schedule trigger, or an event one due with it).

    The newest such trigger's ``created_at`` is the schedule's anchor.
    """
    return trigger.kind == SCHEDULE or _CRON_KEY in trigger.details


def next_fire(schedule: str, after: datetime) -> datetime:
    """The first fire time of the cron expression ``schedule`` (UTC) strictly after ``after``."""
    from croniter import croniter

    fire: datetime = croniter(schedule, after).get_next(datetime)
    return fire


def _due_fire(schedule: str, anchor: datetime, now: datetime) -> datetime | None:
    """The latest fire time in ``(anchor, now]``, or None."""
    from croniter import croniter

    if next_fire(schedule, anchor) > now:
        return None
    # The latest one: the one the reason names (a missed earlier one fires with it, once).
    latest: datetime = croniter(schedule, now + timedelta(microseconds=1)).get_prev(datetime)
    return latest


def _schedule_details(schedule: str, fire: datetime, anchor: datetime) -> dict[str, Any]:
    first = next_fire(schedule, anchor)
    return {
        _CRON_KEY: schedule,
        "fire_at": fire.isoformat(),
        "missed_fires": first < fire,
    }


def _cooldown_left(
    cooldown: timedelta, now: datetime, last: RetrainTriggerRecord | None
) -> timedelta | None:
    if last is None:
        return None
    left = last.created_at + cooldown - now
    return left if left > timedelta(0) else None


def _debounced(
    event: str,
    runs: Sequence[MonitorRunRecord],
    windows: int,
    since: datetime | None,
) -> tuple[str, str, list[str]] | None:
    """``(event, reason, run ids)`` when the newest ``windows`` runs are flagged and fresh."""
    newest = sorted(runs, key=lambda run: run.created_at, reverse=True)[:windows]
    if len(newest) < windows or not all(run.flagged for run in newest):
        return None
    if since is not None and any(run.created_at <= since for run in newest):
        return None
    scores = [run.score for run in reversed(newest) if run.score is not None]
    what = "data drift" if event == "drift" else "a live quality drop"
    reason = f"{what} in the last {windows} consecutive monitoring window(s)"
    if scores:
        label = "drifted share" if event == "drift" else "quality"
        reason += f" ({label} {', '.join(f'{score:.3g}' for score in scores)})"
    return event, reason, [run.id for run in newest]


def _human(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
