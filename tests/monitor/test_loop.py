"""The monitoring loop: consecutive windows of the log judged once each, stored and reported."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from conveyor.session import Session

from .conftest import Monitored

pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
)

START = datetime(2026, 3, 1, tzinfo=UTC)


def _with_window(project: Path, window: int) -> None:
    spec = project / "conveyor.yaml"
    text = spec.read_text(encoding="utf-8")
    spec.write_text(f"{text}monitor:\n  drift: {{window: {window}}}\n", encoding="utf-8")


def test_each_window_is_judged_once_in_time_order_and_a_restart_resumes(
    monitored: Monitored,
) -> None:
    rng = np.random.default_rng(3)
    training = pa.table(
        {
            "x": rng.normal(0, 1, 3000),
            "colour": rng.choice(["warm", "cold"], 3000).tolist(),
            "target": rng.integers(0, 2, 3000),
        }
    )
    version = monitored.register_champion(training)
    _with_window(monitored.root, 300)
    monitored.log(rng.normal(0, 1, 300), START)
    monitored.log(rng.normal(0, 1, 300), START + timedelta(hours=1))
    monitored.log(rng.normal(3, 1, 300), START + timedelta(hours=2))
    monitored.log(rng.normal(3, 1, 100), START + timedelta(hours=3))

    with Session.open(monitored.root) as session:
        runs = monitored.loop(session).tick()
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
        assert monitored.loop(session).tick() == []
        monitored.log(rng.normal(3, 1, 200), START + timedelta(hours=4))
        (fourth,) = monitored.loop(session).tick()
        assert fourth.window_start == START + timedelta(hours=3)
        assert fourth.flagged
        stored = session.store.list_monitor_runs(session.require_spec().spec.name, kind="drift")
        assert [run.id for run in stored] == [fourth.id, *[run.id for run in reversed(runs)]]


def test_the_loop_monitors_only_while_it_holds_the_lease(monitored: Monitored) -> None:
    rng = np.random.default_rng(4)
    training = pa.table({"x": rng.normal(0, 1, 1000), "target": rng.integers(0, 2, 1000)})
    monitored.register_champion(training)
    _with_window(monitored.root, 200)
    monitored.log(rng.normal(0, 1, 200), START)
    with Session.open(monitored.root) as session:
        loop = monitored.loop(session)
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
