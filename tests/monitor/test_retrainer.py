"""The controller retrains a real project: trigger, pipeline run, gate, rollout of a challenger."""

from __future__ import annotations

import csv
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conveyor.cli import app
from conveyor.deploy import Controller
from conveyor.monitor._retrainer import TRIGGER_REASON_TAG, TRIGGER_TAG, Retrainer, launch_run
from conveyor.spec import load_spec
from conveyor.store import MetadataStore, RetrainTriggerRecord, RunStatus

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings(
        "ignore::UserWarning",
        "ignore::FutureWarning",
        "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",
    ),
]

SPEC = """\
name: {name}
sources:
  rows:
    type: file
    path: data/rows.csv
dataset:
  query: select * from rows
model:
  task: binary_classification
  target: label
  algorithm: sklearn:sklearn.linear_model.LogisticRegression
  params: {{}}
gate:
  min: {{roc_auc: {min_auc}}}
  vs_champion: {{metric: roc_auc, max_regression: 0.5}}
monitor:
  retrain:
{retrain}
"""
DRIFT = "    on: [drift]\n    debounce_windows: 2\n    cooldown: 1h"

_ENV = ("CONVEYOR_DB_URL", "CONVEYOR_ARTIFACTS_URL", "MLFLOW_TRACKING_URI", "CONVEYOR_REDIS_URL")


def write_rows(path: Path, *, seed: int, n: int = 300) -> None:
    """A learnable binary problem; another seed gives other rows, hence another model."""
    import numpy as np

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["x1", "x2", "x3", "label"])
        for _ in range(n):
            x = rng.normal(size=3)
            label = int(x[0] + 0.5 * x[1] + rng.normal(scale=0.5) > 0)
            writer.writerow([f"{v:.4f}" for v in x] + [label])


class Project:
    """A project folder with its own SQLite store and MLflow database (the defaults)."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.tracking_uri = f"sqlite:///{root / '.conveyor' / 'mlflow.db'}"
        self.store = MetadataStore(f"sqlite:///{root / '.conveyor' / 'conveyor.db'}")

    def run_pipeline(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _ENV}
        done = subprocess.run(
            [sys.executable, "-m", "conveyor", "--project", str(self.root), "run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def controller(self, **options: Any) -> Controller:
        """The controller ``conveyor controller`` builds (or with a ``retrainer`` given)."""
        return Controller.from_spec(
            self.store,
            load_spec(self.root / "conveyor.yaml").spec,
            tracking_uri=self.tracking_uri,
            project_root=None if "retrainer" in options else self.root,
            cache_dir=self.root / ".conveyor" / "models",
            **options,
        )

    def retrainer(self, **options: Any) -> Retrainer:
        spec = load_spec(self.root / "conveyor.yaml").spec
        assert spec.monitor.retrain is not None
        return Retrainer(
            self.store,
            self.name,
            self.root,
            spec.monitor.retrain,
            rollout=spec.rollout,
            tracking_uri=self.tracking_uri,
            **options,
        )

    def drift(self, windows: int, *, flagged: bool = True) -> list[str]:
        return [
            self.store.add_monitor_run(self.name, "drift", rows=500, flagged=flagged, score=0.6).id
            for _ in range(windows)
        ]

    def registry(self) -> Any:
        from conveyor.registry import ModelRegistry, connect

        return ModelRegistry(connect(self.tracking_uri), self.name)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Project]]:
    import mlflow

    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    before = mlflow.get_tracking_uri()
    opened: list[Project] = []

    def make(*, min_auc: float = 0.6, retrain: str = DRIFT) -> Project:
        name = f"retrain-{secrets.token_hex(3)}"
        root = tmp_path / name
        write_rows(root / "data" / "rows.csv", seed=1)
        (root / "conveyor.yaml").write_text(
            SPEC.format(name=name, min_auc=min_auc, retrain=retrain)
        )
        opened.append(Project(root, name))
        return opened[-1]

    yield make
    for each in opened:
        each.store.close()
    mlflow.set_tracking_uri(before)
    mlflow.set_registry_uri(before)


def wait_finished(
    tick: Callable[[], object], store: MetadataStore, project: str, timeout_s: float = 120.0
) -> RetrainTriggerRecord:
    """Tick until the project's newest trigger is no longer pending or running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tick()
        newest = store.list_retrain_triggers(project, limit=1)[0]
        if newest.status not in ("pending", "running"):
            return newest
        time.sleep(0.3)
    raise AssertionError(f"the retrain did not finish in {timeout_s:g} s: {newest}")


def test_drift_trigger_retrains_and_rolls_the_challenger_out(
    project: Callable[..., Project],
) -> None:
    p = project()
    p.run_pipeline()  # v1, the champion
    write_rows(p.root / "data" / "rows.csv", seed=2, n=400)  # newer data: another model
    store = p.store
    lines: list[str] = []
    launched: list[subprocess.Popen[bytes]] = []

    def launch(*args: Any) -> subprocess.Popen[bytes]:
        launched.append(launch_run(*args))
        return launched[-1]

    first = p.controller(report=lines.append, retrainer=p.retrainer(launch=launch))

    # One flagged window is not enough (debounce_windows: 2).
    p.drift(1)
    first.tick()
    assert store.list_retrain_triggers(p.name) == []
    windows = p.drift(1)
    first.tick()
    (trigger,) = store.list_retrain_triggers(p.name)
    assert trigger.kind == "drift" and trigger.status == "running"
    assert "2 consecutive" in trigger.reason
    assert windows[0] in trigger.details["monitor_runs"]
    assert any(line.startswith(f"retrain {trigger.id[:8]} started (drift)") for line in lines)

    # The controller stops while the run goes on; its successor must not start a second one.
    first.release()
    second = p.controller(report=lines.append)
    done = wait_finished(second.tick, store, p.name)
    assert len(store.list_retrain_triggers(p.name)) == 1
    assert [each.wait(timeout=10) for each in launched] == [0]

    assert done.status == "succeeded", done.message
    assert done.run_id is not None and done.model_version == 2
    run = store.get_run(done.run_id)
    assert run.status is RunStatus.SUCCEEDED and run.trigger == "retrain"
    assert run.tags[TRIGGER_TAG] == trigger.id
    assert run.tags[TRIGGER_REASON_TAG] == trigger.reason

    audit = [e for e in store.list_audit(target=p.name) if e.details.get("trigger") == trigger.id]
    actions = [e.action for e in reversed(audit)]
    assert actions == ["retrain.trigger", "retrain.succeeded"]
    assert audit[-1].actor == "controller" and audit[-1].reason == trigger.reason
    assert audit[-1].details["monitor_runs"] == trigger.details["monitor_runs"]

    version = p.registry().get(2)
    assert "challenger" in version.aliases
    assert version.tags["conveyor.pipeline_run"] == run.id
    deployment = store.active_deployment(p.name)
    assert deployment is not None and deployment.id == done.deployment_id
    assert str(deployment.policy) == "canary"
    assert (deployment.champion_version, deployment.challenger_version) == (1, 2)
    assert f"retrain {trigger.id[:8]}" in deployment.reason
    assert done.message is not None and "v2 is rolling out (canary" in done.message
    assert (p.root / ".conveyor" / "retrain" / f"{trigger.id}.log").is_file()

    # Within the cooldown (1h), new flagged windows start nothing.
    p.drift(3)
    second.tick()
    second.tick()
    assert [t.id for t in store.list_retrain_triggers(p.name)] == [trigger.id]
    second.release()

    listed = CliRunner().invoke(app, ["-p", str(p.root), "monitor", "triggers", "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert (row["id"], row["status"], row["run_id"]) == (trigger.id, "succeeded", run.id)
    table = CliRunner().invoke(app, ["-p", str(p.root), "monitor", "triggers"])
    assert table.exit_code == 0 and "drift" in table.output and "v2" in table.output


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def crashing_launch(
    project_root: Path, trigger_id: str, log_path: Path, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """A launcher whose process dies at once, before any pipeline run exists."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], stdout=log
        )


def test_crashed_run_fails_the_trigger_and_cooldown_then_debounce_gate_the_next(
    project: Callable[..., Project],
) -> None:
    p = project()
    clock = Clock()
    retrainer = p.retrainer(clock=clock, launch=crashing_launch)
    p.drift(2)
    assert retrainer.tick()[0].startswith("retrain ")
    done = wait_finished(retrainer.tick, p.store, p.name, timeout_s=30)
    assert done.status == "failed" and done.run_id is None
    assert done.message is not None and "did not start (exit code 3)" in done.message
    assert [e.action for e in p.store.list_audit(target=p.name)][:2] == [
        "retrain.failed",
        "retrain.trigger",
    ]

    # A failed retrain still starts the cooldown: no retry loop of a crashing pipeline.
    p.drift(2)
    clock.now += timedelta(minutes=59)
    assert retrainer.tick() == []
    # After the cooldown the windows recorded since the failure fire again.
    clock.now += timedelta(minutes=2)
    assert len(retrainer.tick()) == 1
    assert wait_finished(retrainer.tick, p.store, p.name, timeout_s=30).status == "failed"
    assert len(p.store.list_retrain_triggers(p.name)) == 2


def test_failed_gate_is_a_finished_retrain_without_a_rollout(
    project: Callable[..., Project],
) -> None:
    p = project(min_auc=0.999)
    controller = p.controller()
    p.drift(2)
    done = wait_finished(controller.tick, p.store, p.name)
    controller.release()
    assert done.status == "succeeded" and done.run_id is not None
    assert done.message is not None and done.message.startswith("gate failed: ")
    assert "roc_auc" in done.message
    assert done.model_version is None and done.deployment_id is None
    assert p.store.active_deployment(p.name) is None


def test_schedule_fires_once_and_a_fire_during_the_cooldown_is_recorded_as_skipped(
    project: Callable[..., Project],
) -> None:
    p = project(retrain="    schedule: '0 * * * *'\n    cooldown: 90m")
    clock = Clock()
    clock.now = clock.now.replace(minute=10)
    retrainer = p.retrainer(clock=clock, launch=crashing_launch)
    assert retrainer.tick() == []  # the controller's start anchors the schedule
    clock.now += timedelta(hours=3)  # three fire times passed: one retrain
    (line,) = retrainer.tick()
    assert "started (schedule)" in line
    fired = wait_finished(retrainer.tick, p.store, p.name, timeout_s=30)
    assert fired.kind == "schedule" and fired.details["missed_fires"] is True
    assert retrainer.tick() == []

    clock.now += timedelta(hours=1)  # the next fire, 60 of the 90 cooldown minutes later
    (line,) = retrainer.tick()
    assert line.startswith("retrain skipped: ") and "30m00s left" in line
    skipped, _ = p.store.list_retrain_triggers(p.name)
    assert (skipped.kind, skipped.status) == ("schedule", "skipped")
    assert p.store.list_audit(target=p.name)[0].action == "retrain.skip"
    assert retrainer.tick() == []  # recorded once, not on every tick

    clock.now += timedelta(hours=1)  # cooldown over: the following fire starts a retrain
    (line,) = retrainer.tick()
    assert "started (schedule)" in line
    assert wait_finished(retrainer.tick, p.store, p.name, timeout_s=30).status == "failed"
    assert [t.status for t in p.store.list_retrain_triggers(p.name)] == [
        "failed",
        "skipped",
        "failed",
    ]
