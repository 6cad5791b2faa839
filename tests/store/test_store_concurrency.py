"""Several real processes changing one store at once lose nothing and fail nowhere."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from conveyor.store import MetadataStore

pytestmark = pytest.mark.integration

ROUNDS = 50
WORKERS = 2


def test_concurrent_changes_to_one_run_are_all_kept(
    store_url: str, workers: ModuleType, unique: str
) -> None:
    with MetadataStore(store_url) as store:
        run = store.create_run(project=unique, spec_hash="s", actor="a", hostname="h", pid=1)

    workers.run_processes(
        workers.hammer_run, [(store_url, run.id, worker, ROUNDS) for worker in range(WORKERS)]
    )

    with MetadataStore(store_url) as store:
        final = store.get_run(run.id)
        steps = {step.name for step in store.list_step_runs(run.id)}
        caches = [store.get_cache(f"{run.id}-{i}") for i in range(ROUNDS)]
    expected_tags = {f"w{w}-{i}": str(i) for w in range(WORKERS) for i in range(ROUNDS)}
    assert final.tags == expected_tags
    assert steps == {f"w{w}-step-{i}" for w in range(WORKERS) for i in range(ROUNDS)} | {
        f"shared-{i}" for i in range(ROUNDS)
    }
    # 1 at creation, then one per tag merge and one per heartbeat update, from every worker.
    assert final.version == 1 + WORKERS * ROUNDS * 2
    assert all(entry is not None and entry.run_id == run.id for entry in caches)


def test_compare_and_set_increments_are_never_lost(
    store_url: str, workers: ModuleType, unique: str
) -> None:
    times = 20
    with MetadataStore(store_url) as store:
        run = store.create_run(project=unique, spec_hash="s", actor="a", hostname="h", pid=1)

    workers.run_processes(workers.increment_attempt, [(store_url, run.id, times)] * WORKERS)

    with MetadataStore(store_url) as store:
        final = store.get_run(run.id)
    assert final.attempt == 1 + WORKERS * times
    assert final.version == 1 + WORKERS * times


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_concurrent_first_use_migrates_once(
    kind: str, backend_url: Callable[..., str], workers: ModuleType, unique: str
) -> None:
    url = backend_url(kind, fresh=True)
    processes = 4

    workers.run_processes(workers.open_and_create_run, [(url, unique)] * processes)

    with MetadataStore(url) as store:
        assert len(store.list_runs(project=unique)) == processes
