"""`conveyor demo --fast`: the closed loop on the real flights, offline, with real processes.

A champion trained on January to June; a real server (2 workers) and controller; July to
October replayed through HTTP with labels fed back a day later; the drift the summer brings
is detected window after window, a retraining run starts on the newer data, its challenger
passes the gate and is rolled out by canary, judged on live labels, and promoted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from conveyor.cli import app
from conveyor.store import MetadataStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.timeout(600),
    # MLflow's SQL store still uses SQLAlchemy's deprecated ``noload`` strategy.
    pytest.mark.filterwarnings(
        "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
    ),
]


def test_the_fast_demo_closes_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONVEYOR_DB_URL", "CONVEYOR_ARTIFACTS_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--fast", "--dir", str(root)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "what happened" in result.output

    with MetadataStore(f"sqlite:///{root / '.conveyor' / 'conveyor.db'}") as store:
        project = "flights-delay"
        drift = store.list_monitor_runs(project, kind="drift", limit=100)
        assert len(drift) >= 4
        assert all(run.rows == 2000 for run in drift)
        assert {run.model_version for run in drift} == {1, 2}  # judged before and after
        assert "temp" in drift[-1].summary["drifted_columns"]  # the summer's weather

        (trigger,) = store.list_retrain_triggers(project)
        assert (trigger.kind, trigger.status, trigger.model_version) == ("drift", "succeeded", 2)
        assert "4 consecutive monitoring window" in trigger.reason
        run = store.get_run(trigger.run_id or "")
        assert run.tags["conveyor.trigger"] == trigger.id
        actions = {entry.action for entry in store.list_audit(limit=200)}
        assert {"retrain.trigger", "labels.ingest"} <= actions

        # The retraining run trained on more data: January to June, then July too.
        validated = [
            d for d in store.list_dataset_versions(limit=20) if d.name.endswith("validated")
        ]
        assert len(validated) == 2
        assert validated[0].row_count > validated[1].row_count

        (deployment,) = store.list_deployments(project)
        assert deployment.id == trigger.deployment_id
        assert (deployment.policy, deployment.champion_version) == ("canary", 1)
        assert (deployment.challenger_version, deployment.state) == (2, "promoted")
        events = store.list_deployment_events(deployment.id)
        assert events[0].kind == "created"
        assert events[-1].kind == "promoted"
        # The live quality guardrail was judged on labels joined to the prediction log.
        assert any("quality drop" in e.reason for e in events)

        quality = store.list_monitor_runs(project, kind="quality", limit=5)
        assert quality and quality[0].summary["metric"] == "roc_auc"
        assert store.list_alerts(project)  # the drift alert, recorded and deduplicated

    uri = f"sqlite:///{root / '.conveyor' / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    assert int(client.get_model_version_by_alias(project, "champion").version) == 2

    report = (root / "reports" / "demo.html").read_text(encoding="utf-8")
    assert "Drift per window of 2,000 predictions" in report
    assert report.count("data:image/png;base64,") >= 2  # drift per window, quality over time
    for column in ("flights replayed", "model versions", "drift windows", "live roc_auc"):
        assert column in result.output
    assert "rollout v2" in result.output and "promoted" in result.output
