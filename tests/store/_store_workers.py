"""Code run in child processes by the concurrency tests.

It lives in its own module because "spawn" children import their target by module name; the
tests put this folder on ``sys.path``, which children inherit.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.errors import ConflictError
from conveyor.store import MetadataStore, ServingStatsInput, StepStatus


def run_processes(target: Callable[..., None], args: list[tuple[Any, ...]]) -> None:
    """Run ``target(*a, barrier)`` for each ``a`` in its own "spawn" process; all must succeed.

    The barrier is shared by all of them (and reusable: waiting again starts another round).
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(args))
    processes = [context.Process(target=target, args=(*a, barrier)) for a in args]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    for process in processes:
        if process.is_alive():
            process.kill()
    assert [process.exitcode for process in processes] == [0] * len(processes), (
        "a worker failed; its traceback is in the captured stderr"
    )


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


def add_stats(url: str, project: str, worker: int, rounds: int, barrier: Any) -> None:
    """Flush statistics as a replica would, into one row shared by every worker and its own."""
    window = datetime(2030, 1, 1, tzinfo=UTC)
    latency = [1] + [0] * 21 + [1]
    scores = [0] * 19 + [1]
    with MetadataStore(url) as store:
        barrier.wait()
        for _ in range(rounds):
            shared = ServingStatsInput(
                model_version=1,
                window=window,
                requests=2,
                errors=1,
                latency_counts=latency,
                latency_ms_sum=1.5,
                score_counts=scores,
            )
            own = ServingStatsInput(model_version=2, window=window, requests=1, shadow=True)
            store.add_serving_stats(project=project, replica="shared", stats=[shared, own])
            store.add_serving_stats(project=project, replica=f"worker-{worker}", stats=[shared])


def race_for_leases(
    url: str, prefix: str, names: int, holder: str, out: Path, barrier: Any
) -> None:
    """Try to take each lease at the same moment as the other workers; write down the wins."""
    won = []
    with MetadataStore(url) as store:
        for index in range(names):
            barrier.wait()
            if store.acquire_lease(f"{prefix}-{index}", holder, 60):
                won.append(str(index))
    out.write_text("\n".join(won))


def race_to_deploy(url: str, prefix: str, projects: int, out: Path, barrier: Any) -> None:
    """Try to start a deployment of each project at the same moment as the other workers."""
    won = []
    with MetadataStore(url) as store:
        for index in range(projects):
            barrier.wait()
            try:
                store.create_deployment(
                    project=f"{prefix}-{index}",
                    champion_version=1,
                    challenger_version=2,
                    policy="canary",
                    weights={1: 100},
                    actor=out.stem,
                )
            except ConflictError:
                continue
            won.append(str(index))
    out.write_text("\n".join(won))


def race_to_alert(url: str, prefix: str, alerts: int, out: Path, barrier: Any) -> None:
    """Raise each alert at the same moment as the other workers; write down who must notify."""
    won = []
    with MetadataStore(url) as store:
        for index in range(alerts):
            barrier.wait()
            _, notify = store.raise_alert(prefix, f"rule-{index}", "drift", "dataset", {"i": index})
            if notify:
                won.append(str(index))
    out.write_text("\n".join(won))
