"""Telling a live run from one whose process died (SIGKILL, power loss) without marking it."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from conveyor.errors import ConflictError
from conveyor.store import MetadataStore, RunRecord, RunStatus

__all__ = ["HEARTBEAT_S", "is_alive", "reap_stale_runs"]

#: How often a running pipeline touches its run's heartbeat.
HEARTBEAT_S = 10.0
#: A run on another host whose heartbeat is older than this is taken for dead.
_STALE_AFTER = timedelta(seconds=6 * HEARTBEAT_S)


def is_alive(run: RunRecord, *, now: datetime | None = None) -> bool:
    """Whether the process running ``run`` still exists.

    On this host the pid is checked directly; elsewhere only the heartbeat's age can tell.
    """
    if run.status is not RunStatus.RUNNING:
        return False
    if run.hostname == socket.gethostname():
        try:
            os.kill(run.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return (now or datetime.now(UTC)) - run.heartbeat_at < _STALE_AFTER


def reap_stale_runs(store: MetadataStore, project: str) -> list[RunRecord]:
    """Mark runs whose process died while ``running`` as ``interrupted``; return them."""
    reaped = []
    for run in store.list_runs(project=project, limit=50):
        if run.status is not RunStatus.RUNNING or is_alive(run):
            continue
        try:
            reaped.append(
                store.update_run(
                    run.id,
                    expected_version=run.version,
                    status=RunStatus.INTERRUPTED,
                    error=f"the process running it (pid {run.pid} on {run.hostname}) died",
                    finished_at=run.heartbeat_at,
                )
            )
        except ConflictError:
            continue  # someone else touched it first (a resume, or another reaper): theirs wins
    return reaped
