"""The monitoring loop: consecutive windows of the log judged once each, stored and reported."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from conveyor.monitor import MonitorLoop
from conveyor.registry import ModelRegistry, connect
from conveyor.session import Session

pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
)

START = datetime(2026, 3, 1, tzinfo=UTC)


def _with_window(project: Path, window: int) -> None:
    spec = project / "conveyor.yaml"
    text = spec.read_text(encoding="utf-8")
    spec.write_text(f"{text}monitor:\n  drift: {{window: {window}}}\n", encoding="utf-8")


def _loop(session: Session, tracking_uri: str) -> MonitorLoop:
    spec = session.require_spec().spec
    return MonitorLoop(
        session.store,
        session.artifacts,
        session.settings.artifacts_url,
        spec,
        lambda: ModelRegistry(connect(tracking_uri), spec.name),
        session.project.root / "reports",
        clock=lambda: datetime.now(UTC),
    )


def test_each_window_is_judged_once_in_time_order_and_a_restart_resumes(
    project: Path,
    tracking: tuple[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    log_predictions: Callable[..., None],
    register_champion: Callable[..., int],
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking[0])
    rng = np.random.default_rng(3)
    training = pa.table(
        {
            "x": rng.normal(0, 1, 3000),
            "colour": rng.choice(["warm", "cold"], 3000).tolist(),
            "target": rng.integers(0, 2, 3000),
        }
    )
    version = register_champion(project, tracking, training)
    _with_window(project, 300)
    log_predictions(project, rng.normal(0, 1, 300), START)
    log_predictions(project, rng.normal(0, 1, 300), START + timedelta(hours=1))
    log_predictions(project, rng.normal(3, 1, 300), START + timedelta(hours=2))
    log_predictions(project, rng.normal(3, 1, 100), START + timedelta(hours=3))

    with Session.open(project) as session:
        runs = _loop(session, tracking[0]).tick()
        assert [run.flagged for run in runs] == [False, False, True]
        assert [run.window_start for run in runs] == [START + timedelta(hours=h) for h in range(3)]
        assert all(run.rows == 300 and run.model_version == version for run in runs)
        drifted = runs[-1]
        assert drifted.summary["columns"]["x"]["drifted"] is True
        assert drifted.summary["drifted_share"] == drifted.score >= 0.5
        html = session.artifacts.get_bytes(drifted.artifacts["html"]).decode()
        assert "Drift over time" in html  # the two windows before are plotted
        assert Path(drifted.summary["html"]).is_file()

        # Only 100 rows after the last window: nothing to judge, by this loop or a new one.
        assert _loop(session, tracking[0]).tick() == []
        log_predictions(project, rng.normal(3, 1, 200), START + timedelta(hours=4))
        (fourth,) = _loop(session, tracking[0]).tick()
        assert fourth.window_start == START + timedelta(hours=3)
        assert fourth.flagged
        stored = session.store.list_monitor_runs(session.require_spec().spec.name, kind="drift")
        assert [run.id for run in stored] == [fourth.id, *[run.id for run in reversed(runs)]]


def test_the_loop_monitors_only_while_it_holds_the_lease(
    project: Path,
    tracking: tuple[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    log_predictions: Callable[..., None],
    register_champion: Callable[..., int],
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking[0])
    rng = np.random.default_rng(4)
    training = pa.table({"x": rng.normal(0, 1, 1000), "target": rng.integers(0, 2, 1000)})
    register_champion(project, tracking, training)
    _with_window(project, 200)
    log_predictions(project, rng.normal(0, 1, 200), START)
    with Session.open(project) as session:
        loop = _loop(session, tracking[0])
        assert session.store.acquire_lease(loop.lease_name, "someone-else", 60)
        stop = threading.Event()
        thread = threading.Thread(
            target=loop.run, args=(stop,), kwargs={"holder": "me", "interval_s": 0.05}
        )
        thread.start()
        stop.wait(0.5)
        assert session.store.list_monitor_runs(loop.project) == []
        session.store.release_lease(loop.lease_name, "someone-else")
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while not session.store.list_monitor_runs(loop.project) and datetime.now(UTC) < deadline:
            stop.wait(0.05)
        stop.set()
        thread.join(10)
        assert len(session.store.list_monitor_runs(loop.project)) == 1
        assert session.store.lease_holder(loop.lease_name) is None  # released on the way out
