"""Replicas and controllers in real processes: no count lost, one lease holder, one deployment."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from conveyor.store import MetadataStore

pytestmark = pytest.mark.integration

WORKERS = 2


def _wins(paths: list[Path]) -> list[set[int]]:
    return [{int(line) for line in path.read_text().split()} for path in paths]


def test_concurrent_flushes_lose_no_count(store_url: str, workers: ModuleType, unique: str) -> None:
    rounds = 40
    workers.run_processes(
        workers.add_stats, [(store_url, unique, worker, rounds) for worker in range(WORKERS)]
    )

    with MetadataStore(store_url) as store:
        summary = store.serving_stats_summary(unique, since=datetime(2030, 1, 1, tzinfo=UTC))
    flushes = WORKERS * rounds * 2  # every round flushes the shared entry twice per worker
    answered = summary[(1, False)]
    assert (answered.requests, answered.errors) == (2 * flushes, flushes)
    assert answered.latency_counts == [flushes] + [0] * 21 + [flushes]
    assert answered.score_counts == [0] * 19 + [flushes] and answered.n_scores == flushes
    assert answered.latency_mean_ms == pytest.approx(1.5 * flushes / (2 * flushes))
    assert answered.replicas == 1 + WORKERS
    assert summary[(2, True)].requests == WORKERS * rounds


def test_exactly_one_process_wins_each_lease(
    store_url: str, workers: ModuleType, unique: str, tmp_path: Path
) -> None:
    names = 30
    outs = [tmp_path / f"holder-{worker}.txt" for worker in range(WORKERS)]
    workers.run_processes(
        workers.race_for_leases, [(store_url, unique, names, out.stem, out) for out in outs]
    )

    wins = _wins(outs)
    assert set.union(*wins) == set(range(names))
    assert sum(len(won) for won in wins) == names  # nobody won a lease another also won
    with MetadataStore(store_url) as store:
        for out, won in zip(outs, wins, strict=True):
            assert all(store.lease_holder(f"{unique}-{index}") == out.stem for index in won)


def test_exactly_one_process_starts_each_deployment(
    store_url: str, workers: ModuleType, unique: str, tmp_path: Path
) -> None:
    projects = 20
    outs = [tmp_path / f"controller-{worker}.txt" for worker in range(WORKERS)]
    workers.run_processes(
        workers.race_to_deploy, [(store_url, unique, projects, out) for out in outs]
    )

    wins = _wins(outs)
    assert set.union(*wins) == set(range(projects))
    assert sum(len(won) for won in wins) == projects
    with MetadataStore(store_url) as store:
        for index in range(projects):
            assert len(store.list_deployments(f"{unique}-{index}")) == 1


def test_an_alert_raised_by_several_processes_at_once_notifies_once(
    store_url: str, workers: ModuleType, unique: str, tmp_path: Path
) -> None:
    alerts = 20
    outs = [tmp_path / f"controller-{worker}.txt" for worker in range(WORKERS)]
    workers.run_processes(workers.race_to_alert, [(store_url, unique, alerts, out) for out in outs])

    wins = _wins(outs)
    assert set.union(*wins) == set(range(alerts))
    assert sum(len(won) for won in wins) == alerts
    with MetadataStore(store_url) as store:
        found = store.list_alerts(unique)
        assert len(found) == alerts
        assert {alert.count for alert in found} == {WORKERS}
