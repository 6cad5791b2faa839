"""Tells the demo's audience what the product does as it happens, read from the metadata store.

A thread polls the store every second for what is new since the last look: drift windows
judged, live-quality runs, retraining triggers and their outcome, rollout events, alerts. It
reads the same records `conveyor monitor ...` and `conveyor rollout status` show.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from conveyor.store import MetadataStore

__all__ = ["StoreWatcher"]

_POLL_S: Final = 1.0


class StoreWatcher:
    """Says one line per new monitoring run, trigger change, rollout event or alert."""

    def __init__(self, store: MetadataStore, project: str, say: Callable[[str], None]) -> None:
        self.store = store
        self.project = project
        self.say = say
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-watch", daemon=True)

    def __enter__(self) -> StoreWatcher:
        self.look(quiet=True)  # what exists already is not news
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.look()

    def _run(self) -> None:
        while not self._stop.wait(_POLL_S):
            try:
                self.look()
            except Exception as err:  # a failed look must not end the demo
                self.say(f"(could not read the store: {err})")

    def look(self, *, quiet: bool = False) -> None:
        """Say what is new (only remember it when ``quiet``)."""
        lines: list[str] = []
        for run in reversed(self.store.list_monitor_runs(self.project, limit=20)):
            if self._new(f"run:{run.id}"):
                lines.append(_monitor_line(run.kind, run.flagged, run.score, run.summary))
        for trigger in reversed(self.store.list_retrain_triggers(self.project, limit=10)):
            if self._new(f"trigger:{trigger.id}:{trigger.status}"):
                outcome = f": {trigger.message}" if trigger.message else ""
                lines.append(f"retraining {trigger.status} ({trigger.kind}){outcome}")
        for deployment in self.store.list_deployments(self.project, limit=3):
            for event in self.store.list_deployment_events(deployment.id):
                if self._new(f"event:{deployment.id}:{event.id}"):
                    lines.append(
                        f"rollout of v{deployment.challenger_version}: {event.kind}: {event.reason}"
                    )
        for alert in self.store.list_alerts(self.project, limit=20):
            if self._new(f"alert:{alert.id}:{alert.state}:{alert.first_at.isoformat()}"):
                lines.append(f"alert {alert.event} {alert.state} ({alert.subject})")
        for line in [] if quiet else lines:
            self.say(line)

    def _new(self, key: str) -> bool:
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def _monitor_line(kind: str, flagged: bool, score: float | None, summary: dict[str, object]) -> str:
    if kind == "drift":
        columns = summary.get("drifted_columns")
        names = ", ".join(str(c) for c in columns) if isinstance(columns, list) else ""
        verdict = "DRIFT" if flagged else "no drift"
        share = "-" if score is None else f"{score:.0%}"
        return f"drift window: {verdict}, {share} of columns drifted ({names})"
    if kind == "quality":
        metric = summary.get("metric", "quality")
        baseline = summary.get("baseline")
        value = "n/a" if score is None else f"{score:.4f}"
        holdout = f" (holdout {baseline:.4f})" if isinstance(baseline, float) else ""
        return f"live {metric}: {value}{holdout}" + (" — dropped" if flagged else "")
    return f"monitoring run {kind}"
