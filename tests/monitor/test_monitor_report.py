"""`conveyor monitor report`: the newest monitoring run's report, restored from the artifacts."""

from __future__ import annotations

import json
import webbrowser
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner, Result

from conveyor.cli import app
from conveyor.monitor import QualityReport, ingest_labels
from conveyor.session import Session

from .conftest import Monitored

# MLflow's SQL store still uses SQLAlchemy's deprecated ``noload`` strategy; not Conveyor's.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
)

START = datetime(2026, 3, 1, tzinfo=UTC)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _training(rng: np.random.Generator) -> pa.Table:
    return pa.table(
        {
            "x": rng.normal(0, 1, 1000),
            "colour": rng.choice(["warm", "cold"], 1000).tolist(),
            "target": rng.integers(0, 2, 1000),
        }
    )


def _append_spec(project: Path, text: str) -> None:
    spec = project / "conveyor.yaml"
    spec.write_text(spec.read_text(encoding="utf-8") + text, encoding="utf-8")


def test_no_run_yet_says_how_to_get_one(project: Path) -> None:
    result = CliRunner().invoke(app, ["monitor", "report"])
    assert result.exit_code == 1
    assert "has no monitoring run yet" in result.output
    assert "conveyor controller" in result.output
    assert "conveyor monitor drift" in result.output

    quality = CliRunner().invoke(app, ["monitor", "report", "--kind", "quality"])
    assert quality.exit_code == 1
    assert "has no quality run yet" in quality.output
    assert "conveyor labels ingest" in quality.output


def test_monitor_drift_leaves_a_run_whose_report_comes_back_from_the_artifact_store(
    monitored: Monitored, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = monitored.root
    rng = np.random.default_rng(5)
    version = monitored.register_champion(_training(rng))
    monitored.log(rng.normal(3, 1, 400), START)

    checked = invoke("monitor", "drift", "--window", "200")
    assert checked.exit_code == 0, checked.output
    assert "drift detected" in checked.output

    with Session.open(project) as session:
        name = session.require_spec().spec.name
        (run,) = session.store.list_monitor_runs(name)
        stored = {fmt: session.artifacts.get_bytes(d) for fmt, d in run.artifacts.items()}
    assert run.kind == "drift"
    assert run.flagged and run.score == run.summary["drifted_share"]
    assert run.rows == 200 and run.model_version == version
    # the newest 200 of 400 predictions, one second apart
    assert (run.window_start, run.window_end) == (
        START + timedelta(seconds=200),
        START + timedelta(seconds=399),
    )
    assert run.summary["source"] == "cli" and run.summary["reference"] == "v-train"
    html = Path(run.summary["html"])
    assert html.read_bytes() == stored["html"]
    assert html.with_suffix(".json").read_bytes() == stored["json"]

    shown = invoke("monitor", "report")
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[-1] == str(html)
    assert f"drift run {run.id}" in shown.output

    # reports/ cleaned (or another machine): both files come back, byte for byte
    for each in (project / "reports").iterdir():
        each.unlink()
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url) or True)
    again = invoke("monitor", "report", "--kind", "drift", "--open", "--json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.output)
    assert data["id"] == run.id and data["kind"] == "drift" and data["flagged"] is True
    assert data["summary"]["columns"]["x"]["drifted"] is True
    assert data["html"] == str(html) and data["json"] == str(html.with_suffix(".json"))
    assert html.read_bytes() == stored["html"]
    assert html.with_suffix(".json").read_bytes() == stored["json"]
    assert opened == [html.resolve().as_uri()]


def test_the_loop_skips_manual_checks_and_stores_quality_reports(monitored: Monitored) -> None:
    project = monitored.root
    _append_spec(
        project,
        "model: {task: binary_classification, target: target}\n"
        "monitor:\n"
        "  drift: {window: 150}\n"
        "  quality: {metric: accuracy, min_labels: 1, window: 10m}\n",
    )
    rng = np.random.default_rng(6)
    monitored.register_champion(_training(rng))
    x = rng.normal(0.5, 1, 300)
    monitored.log(x, START)
    assert invoke("monitor", "drift", "--window", "150").exit_code == 0  # the newest 150

    truth = (rng.random(200) < 0.7) == (x[:200] > 0.5)  # the model is right 70% of the time
    labels = project / "labels.csv"
    labels.write_text(
        "request_id,label\n" + "".join(f"r{i},{int(t)}\n" for i, t in enumerate(truth)),
        encoding="utf-8",
    )
    now = START + timedelta(minutes=6)
    with Session.open(project) as session:
        ingest_labels(session.settings.artifacts_url, labels, task="binary_classification")
        runs = monitored.loop(session, now).tick()

    # The manual check of the newest rows does not make the loop skip the older ones.
    drift = [run for run in runs if run.kind == "drift"]
    assert [run.window_start for run in drift] == [START, START + timedelta(seconds=150)]
    assert all(run.summary["source"] == "loop" for run in drift)
    (quality,) = [run for run in runs if run.kind == "quality"]
    # Labelled rows of the last 10 minutes: all 200 (logged from START to START + 5 min).
    assert quality.rows == 200
    assert quality.score == pytest.approx(np.mean(truth == (x[:200] > 0.5)))
    assert set(quality.artifacts) == {"json", "html"}

    shown = invoke("monitor", "report", "--kind", "quality")
    assert shown.exit_code == 0, shown.output
    html = Path(shown.output.splitlines()[-1])
    assert html.parent == project / "reports" and html.name.startswith("quality-")
    assert html == Path(quality.summary["html"])
    page = html.read_text(encoding="utf-8")
    assert "Live quality" in page and "Quality over time" in page
    report = QualityReport.from_json(json.loads(html.with_suffix(".json").read_text()))
    overall = report.version(1)
    assert overall is not None and overall.value == pytest.approx(quality.score)
    assert overall.ci_low is not None and overall.ci_low < overall.value < overall.ci_high
    assert report.window == timedelta(minutes=10) and report.windows
    newest = json.loads(invoke("monitor", "report", "--json").output)
    assert newest["kind"] == "quality" and newest["id"] == quality.id

    html.unlink()
    restored = invoke("monitor", "report", "--kind", "quality")
    assert restored.exit_code == 0, restored.output
    assert restored.output.splitlines()[-1] == str(html)
    with Session.open(project) as session:
        assert html.read_bytes() == session.artifacts.get_bytes(quality.artifacts["html"])
