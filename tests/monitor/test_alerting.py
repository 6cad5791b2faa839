"""Monitoring alerts end to end: rules, a real store, a real webhook receiver, the CLI."""

from __future__ import annotations

import json
import secrets
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import write_stats
from typer.testing import CliRunner

from conveyor.cli import app
from conveyor.cli._console import console
from conveyor.errors import SpecError
from conveyor.monitor._alerting import (
    AlertObservation,
    QualityObservation,
    evaluate_alerts,
    rule_id,
    serving_observation,
)
from conveyor.spec import AlertSpec, load_spec
from conveyor.store import MetadataStore, MonitorRunRecord

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Receiver:
    """A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def take(self) -> list[dict[str, Any]]:
        """The bodies received since the last call."""
        bodies = list(self.received)
        self.received.clear()
        return bodies

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore(store_url)
    yield opened
    opened.close()


@pytest.fixture
def project() -> str:
    return f"alerts-{secrets.token_hex(4)}"


def drift_run(store: MetadataStore, project: str, share: float, *, flagged: bool, at: datetime):
    """Record a drift monitoring run as the monitoring loop does."""
    columns = {
        "age": {"method": "psi", "value": 0.4 if flagged else 0.01, "drifted": flagged},
        "income": {"method": "psi", "value": 0.02, "drifted": False},
    }
    return store.add_monitor_run(
        project,
        "drift",
        rows=1000,
        flagged=flagged,
        score=share,
        summary={"columns": columns, "drifted_share": share},
        model_version=2,
        created_at=at,
    )


def seen(project: str, at: datetime, drift: MonitorRunRecord | None = None, **parts: Any):
    return AlertObservation(project=project, now=at, drift=drift, **parts)


def test_a_drift_alert_is_sent_once_while_it_fires_then_resolved_then_sent_again(
    store: MetadataStore, project: str, receiver: Receiver
) -> None:
    rule = AlertSpec(on="drift", webhook=receiver.url)
    strict = AlertSpec(on="drift", webhook=receiver.url, threshold=0.6)  # share 0.5: quiet
    rules = [rule, strict]
    for minute in range(3):
        at = T0 + timedelta(minutes=minute)
        run = drift_run(store, project, 0.5, flagged=True, at=at)
        evaluate_alerts(store, project, rules, seen(project, at, run))
    [firing] = receiver.take()
    assert firing["text"].startswith(":warning: Conveyor data drift alert for " + project)
    assert "age" in firing["text"] and "secret" not in firing["text"]
    assert firing["event"] == "drift" and firing["state"] == "firing"
    assert firing["subject"] == "dataset" and firing["value"] == 0.5
    assert firing["model_version"] == 2 and firing["project"] == project
    assert firing["details"]["drifted_columns"] == ["age"]
    assert firing["rule"] == rule_id(rule) != rule_id(strict)
    [alert] = store.list_alerts(project)
    assert (alert.state, alert.count, alert.rule) == ("firing", 3, rule_id(rule))
    assert alert.notified_at == T0

    # Nothing to judge (no drift run yet in this loop): nothing changes.
    assert evaluate_alerts(store, project, rules, seen(project, T0 + timedelta(minutes=3))) == []

    for minute in (4, 5):
        at = T0 + timedelta(minutes=minute)
        run = drift_run(store, project, 0.0, flagged=False, at=at)
        evaluate_alerts(store, project, rules, seen(project, at, run))
    [resolved] = receiver.take()
    assert resolved["state"] == "resolved" and resolved["text"].startswith(":white_check_mark:")
    assert store.list_alerts(project, state="firing") == []

    at = T0 + timedelta(minutes=6)
    [outcome] = evaluate_alerts(
        store,
        project,
        rules,
        seen(project, at, drift_run(store, project, 0.5, flagged=True, at=at)),
    )
    assert outcome.notified and outcome.failed is None and outcome.state == "firing"
    assert [body["state"] for body in receiver.take()] == ["firing"]
    [again] = store.list_alerts(project, state="firing")
    assert again.first_at == at and again.count == 1


def test_a_drift_alert_resolves_only_after_clear_after_clear_windows(
    store: MetadataStore, project: str, receiver: Receiver
) -> None:
    rule = AlertSpec(on="drift", webhook=receiver.url, clear_after=2)

    def window(minute: int, flagged: bool) -> list[str]:
        at = T0 + timedelta(minutes=minute)
        run = drift_run(store, project, 0.5 if flagged else 0.1, flagged=flagged, at=at)
        recent = tuple(store.list_monitor_runs(project, kind="drift", limit=10))
        evaluate_alerts(store, project, [rule], seen(project, at, run, recent_drift=recent))
        return [body["state"] for body in receiver.take()]

    # A verdict wavering around its threshold: one firing, no resolved/firing pairs.
    assert window(0, True) == ["firing"]
    assert window(1, False) == []
    assert window(2, True) == []
    assert window(3, False) == []
    assert [a.state for a in store.list_alerts(project)] == ["firing"]
    assert window(4, False) == ["resolved"]  # two clear windows in a row
    assert window(5, True) == ["firing"]


def test_a_firing_alert_is_sent_again_after_renotify_after_only(
    store: MetadataStore, project: str, receiver: Receiver
) -> None:
    hourly = AlertSpec(on="drift", webhook=receiver.url + "?h", renotify_after="1h")
    once = AlertSpec(on="drift", webhook=receiver.url + "?once", renotify_after=None)
    quiet = AlertSpec(on="drift", webhook=receiver.url + "?q", send_resolved=False)
    sent = []
    for at in (T0, T0 + timedelta(minutes=30), T0 + timedelta(minutes=61), T0 + timedelta(days=1)):
        run = drift_run(store, project, 0.5, flagged=True, at=at)
        evaluate_alerts(store, project, [hourly, once], seen(project, at, run))
        sent.append(sorted(body["rule"] for body in receiver.take()))
    both = sorted([rule_id(hourly), rule_id(once)])
    assert sent == [both, [], [rule_id(hourly)], [rule_id(hourly)]]

    # send_resolved: false records the resolution without a message.
    at = T0 + timedelta(days=2)
    evaluate_alerts(
        store,
        project,
        [quiet],
        seen(project, at, drift_run(store, project, 1, flagged=True, at=at)),
    )
    assert len(receiver.take()) == 1
    at += timedelta(minutes=1)
    [outcome] = evaluate_alerts(
        store,
        project,
        [quiet],
        seen(project, at, drift_run(store, project, 0, flagged=False, at=at)),
    )
    assert outcome.state == "resolved" and not outcome.notified
    assert receiver.take() == []


def test_error_rate_and_latency_rules_judge_the_served_traffic(
    store: MetadataStore, project: str, receiver: Receiver
) -> None:
    errors = AlertSpec(on="error_rate", webhook=receiver.url, threshold=0.05)
    slow = AlertSpec(on="latency", webhook=receiver.url, threshold=250)
    lenient = AlertSpec(on="error_rate", webhook=receiver.url, threshold=0.2)
    rules = [errors, slow, lenient]
    write_stats(store, project, 3, 400, at=T0, errors=40, latency_ms=400)
    # Shadow predictions are never answered: their failures and latency do not count.
    write_stats(store, project, 4, 400, at=T0, errors=400, latency_ms=900, shadow=True)
    serving = serving_observation(store, project, T0 - timedelta(minutes=1))
    assert serving.requests == 400 and serving.error_rate == pytest.approx(0.1)
    assert serving.model_version == 3 and serving.latency_p99_ms is not None
    assert serving.latency_p99_ms > 250

    now = T0 + timedelta(minutes=1)
    outcomes = evaluate_alerts(store, project, rules, seen(project, now, serving=serving))
    assert sorted(o.event for o in outcomes) == ["error_rate", "latency"]
    bodies = {body["event"]: body for body in receiver.take()}
    assert bodies["error_rate"]["value"] == pytest.approx(0.1)
    assert bodies["error_rate"]["threshold"] == 0.05 and bodies["error_rate"]["model_version"] == 3
    assert "error rate 10.00%" in bodies["error_rate"]["text"]
    assert bodies["latency"]["value"] > 250 and "p99 latency" in bodies["latency"]["text"]

    # Too few requests to judge an error rate: nothing changes.
    later = T0 + timedelta(minutes=10)
    write_stats(store, project, 3, 5, at=later, errors=5, latency_ms=3)
    few = serving_observation(store, project, later)
    assert few.error_rate is None and few.latency_p99_ms is not None
    evaluate_alerts(store, project, [errors], seen(project, later, serving=few))
    assert receiver.take() == [] and len(store.list_alerts(project, state="firing")) == 2

    healthy_at = T0 + timedelta(minutes=20)
    write_stats(store, project, 3, 500, at=healthy_at, errors=1, latency_ms=3)
    healthy = serving_observation(store, project, healthy_at, version=3)
    evaluate_alerts(store, project, rules, seen(project, healthy_at, serving=healthy))
    assert sorted((b["event"], b["state"]) for b in receiver.take()) == [
        ("error_rate", "resolved"),
        ("latency", "resolved"),
    ]


def test_a_quality_drop_is_judged_against_the_holdout_value_in_the_metric_direction(
    store: MetadataStore, project: str, receiver: Receiver
) -> None:
    auc = AlertSpec(on="quality_drop", webhook=receiver.url, threshold=0.03)

    def judge(quality: QualityObservation) -> list[str]:
        outcomes = evaluate_alerts(store, project, [auc], seen(project, T0, quality=quality))
        return [o.state for o in outcomes]

    assert judge(QualityObservation("roc_auc", None, 0.85, 2)) == []  # no labels yet
    assert judge(QualityObservation("roc_auc", 0.83, 0.85, 2)) == []  # a drop of 0.02
    assert judge(QualityObservation("roc_auc", 0.80, 0.85, 2)) == ["firing"]
    [body] = receiver.take()
    assert body["value"] == pytest.approx(0.05) and body["model_version"] == 2
    assert body["details"] == {"metric": "roc_auc", "live": 0.80, "baseline": 0.85}
    assert "roc_auc 0.8 against 0.85" in body["text"]
    # For an error metric a rise is the drop; an improvement resolves.
    assert judge(QualityObservation("rmse", 10.5, 10.0, 2, higher_is_better=False)) == ["firing"]
    assert judge(QualityObservation("rmse", 9.0, 10.0, 2, higher_is_better=False)) == ["resolved"]


def test_a_webhook_that_is_down_is_logged_and_the_alert_is_still_recorded(
    store: MetadataStore, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rule = AlertSpec(on="drift", webhook=f"http://127.0.0.1:{port}/secret-token")
    run = drift_run(store, project, 0.5, flagged=True, at=T0)
    [outcome] = evaluate_alerts(store, project, [rule], seen(project, T0, run))
    assert outcome.notified and outcome.failed is not None
    assert "refused" in outcome.failed.lower()
    assert f"127.0.0.1:{port}/…" in caplog.text and "secret" not in caplog.text
    [alert] = store.list_alerts(project, state="firing")
    assert alert.event == "drift" and alert.payload["value"] == 0.5


def test_conveyor_monitor_alerts_lists_them(
    store_url: str,
    store: MetadataStore,
    project: str,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "conveyor.yaml").write_text(f"name: {project}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVEYOR_DB_URL", store_url)
    monkeypatch.setattr(console, "width", 200)
    drift = AlertSpec(on="drift", webhook=receiver.url)
    quality = AlertSpec(on="quality_drop", webhook=receiver.url, threshold=0.01)
    evaluate_alerts(
        store,
        project,
        [drift, quality],
        seen(
            project,
            T0,
            drift_run(store, project, 0.5, flagged=True, at=T0),
            quality=QualityObservation("roc_auc", 0.9, 0.9, 1),
        ),
    )
    runner = CliRunner()
    table = runner.invoke(app, ["monitor", "alerts"], catch_exceptions=False)
    assert table.exit_code == 0, table.output
    assert "firing" in table.output and "drift" in table.output and "age" in table.output
    listed = runner.invoke(app, ["monitor", "alerts", "--json"], catch_exceptions=False)
    [entry] = json.loads(listed.output)
    assert entry["event"] == "drift" and entry["state"] == "firing" and entry["count"] == 1
    assert entry["rule"] == rule_id(drift)
    resolved = runner.invoke(app, ["monitor", "alerts", "--state", "resolved"])
    assert resolved.exit_code == 0 and "No resolved alerts" in resolved.output


def test_rules_that_need_a_threshold_say_so_with_the_key_path(tmp_path: Path) -> None:
    spec = tmp_path / "conveyor.yaml"
    spec.write_text(
        "name: demo\nmonitor:\n  alerts:\n"
        "    - {on: latency, webhook: 'https://hooks.test/a', threshold: 250}\n"
        "    - {on: error_rate, webhook: 'https://hooks.test/a'}\n",
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert "monitor.alerts[1].threshold: an alert on error_rate needs a threshold" in str(
        caught.value
    )
    spec.write_text(
        "name: demo\nmonitor:\n  alerts:\n"
        "    - {on: drift, webhook: 'https://hooks.test/a', renotify_after: 30m}\n"
        "    - {on: latency, webhook: 'https://hooks.test/a', threshold: 250, "
        "renotify_after: null, send_resolved: false}\n",
        encoding="utf-8",
    )
    first, second = load_spec(spec).spec.monitor.alerts
    assert first.renotify_after == timedelta(minutes=30) and first.send_resolved
    assert second.renotify_after is None and not second.send_resolved
