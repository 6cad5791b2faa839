"""`conveyor labels ingest` and `conveyor monitor quality` on a real project folder."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner, Result

from conveyor.cli import app
from conveyor.serving._predlog import PredictionLog
from conveyor.session import Session

START = datetime(2026, 3, 1, tzinfo=UTC)
SPEC = """\
name: {name}
model:
  task: binary_classification
  target: delayed
monitor:
  quality:
    window: 2h
    min_labels: 20
"""


@pytest.fixture
def project(project: Path) -> Path:
    """The folder of the conftest's ``project``, watching a binary classifier's live quality."""
    spec = SPEC.format(name=f"quality-{secrets.token_hex(3)}")
    (project / "conveyor.yaml").write_text(spec, encoding="utf-8")
    return project


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def serve(project: Path, p: np.ndarray, version: int, first: int = 0) -> None:
    """Log requests ``r{first}...`` with positive-class probabilities ``p``, a minute apart."""
    log = PredictionLog(str(project / ".conveyor" / "artifacts"), worker_id=f"w{version}")
    for i, value in enumerate(p, start=first):
        log.append(
            request_id=f"r{i}",
            timestamp=(START + timedelta(minutes=i)).timestamp(),
            model_name="m",
            model_version=version,
            inputs={"x": np.array([value])},
            outputs={"prediction": np.array([int(value > 0.5)]), "proba": np.c_[1 - value, value]},
            latency_ms=1.0,
            n_rows=1,
        )
    log.close()


def labels_csv(path: Path, labels: dict[str, int], header: str = "request_id,label") -> Path:
    body = "\n".join(f"{k},{'true' if v else 'false'}" for k, v in labels.items())
    path.write_text(f"{header}\n{body}\n", encoding="utf-8")
    return path


def test_ingest_late_labels_then_measure_each_version(project: Path) -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 240)
    p = np.clip(0.5 + 0.35 * (truth - 0.5) + rng.normal(0, 0.2, 240), 0.01, 0.99)
    serve(project, p[:120], version=1)
    serve(project, p[120:200], version=2, first=120)  # r200..r239 are not logged yet

    early = labels_csv(project / "a.csv", {f"r{i}": truth[i] for i in range(100)})
    first = invoke("labels", "ingest", str(early))
    assert first.exit_code == 0, first.output
    assert "ingested 100 labels by request id ('request_id')" in first.output
    assert "100 match logged predictions; 0 match none yet" in first.output
    assert "labelled predictions now: 100 of 200 (50.0%)" in first.output

    late = labels_csv(project / "b.csv", {f"r{i}": truth[i] for i in range(100, 240)})
    second = invoke("labels", "ingest", str(late))
    assert "100 match logged predictions; 40 match none yet" in second.output
    assert "labelled predictions now: 200 of 200" in second.output
    serve(project, p[200:], version=2, first=200)  # the late predictions finally arrive

    result = invoke("monitor", "quality", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    overall = {v["model_version"]: v for v in report["versions"]}
    assert overall[1]["n_labelled"] == 120 and overall[2]["n_labelled"] == 120
    assert overall[2]["value"] == pytest.approx(roc_auc_score(truth[120:], p[120:]))
    assert overall[1]["ci_low"] < overall[1]["value"] < overall[1]["ci_high"]
    assert report["window_seconds"] == 7200 and len(report["windows"]) == 2

    with Session.open(project) as session:
        entries = [e for e in session.store.list_audit() if e.action == "labels.ingest"]
    assert len(entries) == 2 and entries[0].details["unmatched"] == 40

    table = invoke("monitor", "quality", "--window", "1h", "--html", str(project / "q.html"))
    assert table.exit_code == 0, table.output
    assert "live roc_auc (higher is better)" in table.output
    assert "2026-03-01 03:00" in table.output and "v2" in table.output
    hours = [line for line in table.output.splitlines() if "2026-03-01" in line]
    assert len(hours) == 4 and all(" 60 " in line and "100.0%" in line for line in hours)
    assert (project / "q.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    since = invoke("monitor", "quality", "--json", "--since", "2026-03-01T02:00")
    assert [v["model_version"] for v in json.loads(since.output)["versions"]] == [2]
    saved = sorted((project / "reports").glob("quality-*"))
    assert [f.suffix for f in saved] == [".html", ".json"] * 3


def test_missing_labels_leave_a_version_without_a_value(project: Path) -> None:
    serve(project, np.linspace(0.1, 0.9, 30), version=1)
    labels_csv(project / "l.csv", {f"r{i}": i % 2 for i in range(10)})
    assert invoke("labels", "ingest", "l.csv").exit_code == 0
    result = invoke("monitor", "quality", "--window", "1d")
    assert result.exit_code == 0, result.output
    assert "33.3%" in result.output and "10 labelled, fewer than 20" in result.output


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("request_id,lable\nr1,1\n", [], "has no column 'label'; did you mean 'lable'?"),
        ("request_id,label\nr1,maybe\n", [], "label 'maybe' in column 'label' is not 0/1"),
        (
            "id,y\nr1,1\n",
            ["--id-column", "id", "--label-column", "z"],
            "no column 'z'; its columns are id, y",
        ),
        (None, [], "label file 'missing.csv' does not exist"),
    ],
)
def test_bad_label_files_fail_cleanly(
    project: Path, content: str | None, args: list[str], message: str
) -> None:
    if content is not None:
        (project / "missing.csv").write_text(content, encoding="utf-8")
    result = CliRunner().invoke(app, ["labels", "ingest", "missing.csv", *args])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)


def test_quality_without_a_prediction_log_or_bad_options(project: Path) -> None:
    result = CliRunner().invoke(app, ["monitor", "quality"])
    assert result.exit_code == 1 and "no prediction has been logged" in result.output
    bad = CliRunner().invoke(app, ["monitor", "quality", "--window", "soon"])
    assert bad.exit_code == 2 and "not a duration" in bad.output
