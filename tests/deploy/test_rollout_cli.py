"""`conveyor deploy`, `rollout status|pause|resume|promote|abort`, `rollback` and `controller`."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from conveyor.cli import app
from conveyor.cli._console import console, err_console
from conveyor.store import MetadataStore

from .conftest import Tracking, Versions, Webhook, write_stats

Invoke = Callable[..., Result]

SPEC = """\
name: {name}
rollout:
  policy: canary
  steps: [50, 100]
  min_requests_per_step: 10
  min_seconds_per_step: 0
  guardrails: {{error_rate: 0.05, min_requests: 10}}
monitor:
  alerts:
    - {{on: rollback, webhook: "{webhook}"}}
"""


@pytest.fixture
def invoke(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    project: str,
    tracking: Tracking,
    webhook: Webhook,
) -> Invoke:
    """Run `conveyor` in a project folder whose MLflow is the session's tracking database."""
    for name in ("CONVEYOR_DB_URL", "CONVEYOR_ARTIFACTS_URL", "CONVEYOR_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.uri)
    (tmp_path / "conveyor.yaml").write_text(SPEC.format(name=project, webhook=webhook.url))
    monkeypatch.chdir(tmp_path)
    for each in (console, err_console):
        monkeypatch.setattr(each, "width", 200)

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    """The project's own store (what the commands open)."""
    with MetadataStore(f"sqlite:///{tmp_path / '.conveyor' / 'conveyor.db'}") as opened:
        yield opened


def traffic(
    store: MetadataStore, project: str, version: int, requests: int, errors: int = 0
) -> None:
    """Requests counted in the next statistics window, so the current step sees them."""
    later = datetime.now(UTC) + timedelta(seconds=10)
    write_stats(store, project, version, requests, at=later, errors=errors)


def failed(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.strip()]
    assert line.startswith("error: ")
    for needle in needles:
        assert needle in result.output


def test_deploy_watch_steer_promote_and_roll_back(
    invoke: Invoke, versions: Versions, registry: Any, project: str, store: MetadataStore
) -> None:
    versions(2)
    failed(invoke("deploy", "2", "--reason", "try"), "no champion to roll v2 out against")

    first = invoke("deploy", "1", "--policy", "direct", "--reason", "first version")
    assert first.exit_code == 0, first.output
    assert f"version 1 of {project} is champion and serves all traffic" in first.output
    failed(invoke("deploy", "--reason", "try"), "no challenger alias")

    registry.set_challenger(2, reason="gate passed", actor="ci", store=store)
    started = invoke("deploy", "--reason", "gate passed")
    assert started.exit_code == 0, started.output
    record = store.active_deployment(project)
    assert f"deployment {record.id[:8]}: canary of v2 against v1; weights v1 50%, v2 50%" in (
        started.output
    )
    assert "starting canary of v2: step 1/2 sends it 50% of traffic" in started.output
    assert "no controller is running" in started.output
    failed(invoke("deploy", "2", "--reason", "again"), "already has a rollout in progress")

    shown = invoke("rollout", "status")
    assert shown.exit_code == 0, shown.output
    for needle in (
        record.id[:8],
        "canary of v2 against v1",
        "rolling",
        "step 1/2",
        "v1 50%, v2 50%",
        "error_rate",
        "not judged yet",
        "no controller is running",
        "gate passed",
        "next  hold: canary step 1/2 (50%): waiting for 0/10 requests",
    ):
        assert needle in shown.output, needle  # fmt: skip

    missing = invoke("rollout", "pause")
    assert missing.exit_code == 2 and "--reason" in missing.output
    assert invoke("rollout", "pause", "--reason", "checking a ticket").exit_code == 0
    failed(invoke("rollout", "pause", "--reason", "again"), "already paused")
    resumed = invoke("rollout", "resume", "--reason", "ticket closed")
    assert resumed.exit_code == 0 and "resumed at step 1" in resumed.output

    traffic(store, project, 2, 12)
    once = invoke("controller", "--once")
    assert once.exit_code == 0, once.output
    assert "advance: canary step 1/2 (50%) held" in once.output
    assert store.lease_holder(f"controller:{project}") is None  # --once gives the lease back
    data = json.loads(invoke("rollout", "status", "--json").output)
    assert (data["deployment"]["step"], data["deployment"]["weights"]) == (
        1,
        {"1": 0.0, "2": 100.0},
    )
    assert [e["kind"] for e in data["events"]] == [
        "created", "paused", "resumed", "advanced",
    ]  # fmt: skip
    assert {g["name"] for g in data["guardrails"]} == {"error_rate"}

    promoted = invoke("rollout", "promote", "--reason", "looks good")
    assert promoted.exit_code == 0, promoted.output
    assert "promoted; v2 is the champion" in promoted.output
    assert registry.alias("champion").version == 2
    failed(invoke("rollout", "abort", "--reason", "late"), "has no rollout in progress", "promoted")

    back = invoke("rollback", "--reason", "support tickets")
    assert back.exit_code == 0, back.output
    assert f"version 1 of {project} is champion again and serves all traffic" in back.output
    assert registry.alias("champion").version == 1
    latest = json.loads(invoke("rollout", "status", "--json").output)["deployment"]
    assert (latest["policy"], latest["state"], latest["weights"]) == (
        "direct", "promoted", {"1": 100.0, "2": 0.0},
    )  # fmt: skip
    actions = [(e.action, e.actor) for e in store.list_audit(limit=20)]
    assert ("rollout.pause", "rollout.resume", "rollout.promote") == tuple(
        a
        for a, _ in reversed(actions)
        if a in ("rollout.pause", "rollout.resume", "rollout.promote")
    )
    assert actions[0][0] == "deploy" and actions[1][0] == "rollback"


def test_the_controller_rolls_a_failing_canary_back_and_alerts_the_webhook(
    invoke: Invoke, versions: Versions, registry: Any, project: str, store: MetadataStore,
    webhook: Webhook,
) -> None:  # fmt: skip
    versions(2)
    registry.promote(1, reason="first", actor="ci", store=store)
    assert invoke("deploy", "2", "--reason", "try").exit_code == 0
    traffic(store, project, 2, 20, errors=5)
    once = invoke("controller", "--once")
    assert once.exit_code == 0, once.output
    assert "rollback: canary step 1/2 (50%): guardrail error_rate breached" in once.output
    [alert] = webhook.received
    assert alert["guardrail"] == "error_rate" and alert["project"] == project
    shown = invoke("rollout", "status")
    assert "rolled_back" in shown.output and "traffic is back on v1" in shown.output
    assert registry.alias("champion").version == 1

    # A person's abort is not an alarm: no alert.
    assert invoke("deploy", "2", "--reason", "again").exit_code == 0
    aborted = invoke("rollback", "--reason", "wrong build")
    assert aborted.exit_code == 0 and "aborted: v1 serves all traffic again" in aborted.output
    assert len(webhook.received) == 1


def test_status_watch_refreshes_until_ctrl_c(
    invoke: Invoke, versions: Versions, registry: Any, project: str, store: MetadataStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    assert "has no deployment yet" in invoke("rollout", "status").output
    versions(2)
    registry.promote(1, reason="first", actor="ci", store=store)
    assert invoke("deploy", "2", "--reason", "try").exit_code == 0
    naps = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", sleep)
    watched = invoke("rollout", "status", "--watch")
    assert watched.exit_code == 0, watched.output
    assert naps == [1.0, 1.0, 1.0]
    assert "canary of v2 against v1" in watched.output


def test_the_controller_command_runs_until_sigterm(
    invoke: Invoke, versions: Versions, registry: Any, project: str, store: MetadataStore
) -> None:
    versions(2)
    registry.promote(1, reason="first", actor="ci", store=store)
    assert invoke("deploy", "2", "--reason", "try").exit_code == 0
    traffic(store, project, 2, 12)

    def terminate_once_it_acted() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            record = store.active_deployment(project)
            if record is not None and record.step == 1:
                break
            time.sleep(0.05)
        if store.lease_holder(f"controller:{project}") is not None:  # the loop runs: stop it
            os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_it_acted)
    killer.start()
    result = invoke("controller", "--interval", "0.1")
    killer.join()
    assert result.exit_code == 0, result.output
    assert f"holds the lease controller:{project}" in result.output
    assert "advance: canary step 1/2 (50%)" in result.output
    assert result.output.rstrip().endswith("controller stopped")
    assert store.lease_holder(f"controller:{project}") is None
