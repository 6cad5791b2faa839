"""`conveyor monitor drift` on a real project: prediction log, registry, stores and reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner, Result

from conveyor.cli import app
from conveyor.session import Session

from .conftest import LogPredictions, Monitored

# MLflow's SQL store still uses SQLAlchemy's deprecated ``noload`` strategy; not Conveyor's.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
)

Invoke = Callable[..., Result]
START = datetime(2026, 3, 1, tzinfo=UTC)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_the_newest_window_against_the_one_before(
    project: Path, log_predictions: LogPredictions
) -> None:
    rng = np.random.default_rng(0)
    log_predictions(project, rng.normal(0, 1, 600), START)
    log_predictions(project, rng.normal(1.5, 1, 300), START + timedelta(hours=1))

    first = invoke("monitor", "drift", "--reference", "previous", "--window", "300")

    assert first.exit_code == 0, first.output
    assert "300 newest predictions against the 300 predictions before" in first.output
    assert "drift detected" in first.output
    reports = project / "reports"
    (json_path,) = reports.glob("drift-*.json")
    data = json.loads(json_path.read_text())
    assert {c["name"] for c in data["columns"]} == {"in_x", "in_colour", "out_prediction"}
    assert set(data["drifted_columns"]) >= {"in_x", "out_prediction"}
    assert data["current_rows"] == 300  # shadow rows are not served traffic
    assert "Drift over time" not in json_path.with_suffix(".html").read_text()
    # recorded like the monitoring loop's windows: a drift run, its reports in the artifacts
    with Session.open(project) as session:
        (run,) = session.store.list_monitor_runs(session.require_spec().spec.name)
        assert session.artifacts.get_bytes(run.artifacts["json"]) == json_path.read_bytes()
        html_bytes = session.artifacts.get_bytes(run.artifacts["html"])
    assert html_bytes == json_path.with_suffix(".html").read_bytes()
    assert (run.kind, run.rows, run.flagged, run.model_version) == ("drift", 300, True, 1)
    assert run.summary["source"] == "cli" and run.summary["reference"] == "previous window"
    assert run.summary["html"] == str(json_path.with_suffix(".html"))
    assert run.score == data["drifted_share"]

    second = invoke("monitor", "drift", "--reference", "previous", "-w", "300", "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.output)["drifted"] is True
    assert len(list(reports.glob("drift-*.html"))) == 2
    newest = sorted(reports.glob("drift-*.html"))[-1]
    assert "Drift over time" in newest.read_text()


def test_a_log_of_one_window_has_nothing_before_it(
    project: Path, log_predictions: LogPredictions
) -> None:
    log_predictions(project, np.zeros(100), START)
    result = CliRunner().invoke(app, ["monitor", "drift", "--reference", "previous"])
    assert result.exit_code == 1
    assert "holds only 100 predictions" in result.output


def test_no_log_says_how_to_get_one(project: Path, log_predictions: LogPredictions) -> None:
    result = CliRunner().invoke(app, ["monitor", "drift", "--reference", "previous"])
    assert result.exit_code == 1
    assert "no prediction has been logged" in result.output


def test_the_newest_window_against_the_champions_training_data(monitored: Monitored) -> None:
    rng = np.random.default_rng(1)
    monitored.log(rng.normal(0, 1, 500), START)
    missing = CliRunner().invoke(app, ["monitor", "drift"])
    assert missing.exit_code == 1
    assert "has no champion to compare with" in missing.output

    training = pa.table(
        {
            "x": rng.normal(0, 1, 2000),
            "colour": rng.choice(["warm", "cold"], 2000).tolist(),
            "target": rng.integers(0, 2, 2000),
        }
    )
    monitored.register_champion(training)

    result = invoke("monitor", "drift", "--window", "400", "--html", "out/drift.html")

    assert result.exit_code == 0, result.output
    assert "against the training data of version 1 (dataset version v-train)" in result.output
    assert "no dataset drift" in result.output
    report = json.loads(next((monitored.root / "reports").glob("drift-*.json")).read_text())
    assert [c["name"] for c in report["columns"]] == ["x", "colour"]
    assert report["columns"][0]["current_name"] == "in_x"
    assert report["skipped"] == {
        "target": "not in the current data (looked for 'in_target' or 'target')"
    }
    assert (monitored.root / "out" / "drift.html").is_file()
