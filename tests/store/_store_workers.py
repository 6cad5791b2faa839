"""Code run in child processes by the concurrency tests.

It lives in its own module because "spawn" children import their target by module name; the
tests put this folder on ``sys.path``, which children inherit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from conveyor.errors import ConflictError
from conveyor.store import MetadataStore, StepStatus


def hammer_run(url: str, run_id: str, worker: int, rounds: int, barrier: Any) -> None:
    """Change the same run as the other workers, as fast as possible."""
    with MetadataStore(url) as store:
        barrier.wait()
        for i in range(rounds):
            store.merge_run_tags(run_id, {f"w{worker}-{i}": str(i)})
            store.update_run(run_id, heartbeat_at=datetime.now(UTC))
            store.upsert_step_run(run_id, f"w{worker}-step-{i}", status=StepStatus.RUNNING)
            # Same step and cache key from every worker: concurrent first inserts must not fail.
            store.upsert_step_run(run_id, f"shared-{i}", status=StepStatus.SUCCEEDED)
            store.put_cache(
                cache_key=f"{run_id}-{i}", step="s", outputs={"by": str(worker)}, run_id=run_id
            )


def increment_attempt(url: str, run_id: str, times: int, barrier: Any) -> None:
    """Add 1 to the run's ``attempt`` ``times`` times with compare-and-set, retrying on conflict."""
    with MetadataStore(url) as store:
        barrier.wait()
        done = 0
        while done < times:
            run = store.get_run(run_id)
            try:
                store.update_run(run_id, expected_version=run.version, attempt=run.attempt + 1)
            except ConflictError:
                continue
            done += 1


def open_and_create_run(url: str, project: str, barrier: Any) -> None:
    """Open a store (migrating a fresh database) at the same moment as the other workers."""
    barrier.wait()
    with MetadataStore(url) as store:
        store.create_run(project=project, spec_hash="s", actor="a", hostname="h", pid=1)
