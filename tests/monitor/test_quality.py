"""Live quality on a real prediction log and real label files, checked against scikit-learn."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score, root_mean_squared_error

from conveyor.monitor import (
    QualityReport,
    ingest_labels,
    joined_predictions,
    live_quality,
    version_quality,
)
from conveyor.serving._predlog import PredictionLog

START = datetime(2026, 3, 1, tzinfo=UTC)
BINARY = "binary_classification"


def log(base: Path, version: int, outputs: list[dict[str, Any]], *, shadow: bool = False) -> None:
    """One single-row request per output, a minute apart, ids ``q0, q1, ...``."""
    predictions = PredictionLog(str(base), worker_id=f"w{version}{int(shadow)}", flush_seconds=60)
    for i, output in enumerate(outputs):
        predictions.append(
            request_id=f"q{i}",
            timestamp=(START + timedelta(minutes=i)).timestamp(),
            model_name="m",
            model_version=version,
            inputs={"x": np.array([float(i)])},
            outputs={name: np.asarray(value)[None] for name, value in output.items()},
            latency_ms=1.0,
            n_rows=1,
            shadow=shadow,
        )
    predictions.close()


def binary_outputs(p: np.ndarray) -> list[dict[str, Any]]:
    return [{"prediction": int(v > 0.5), "proba": np.array([1 - v, v])} for v in p]


def ingest(base: Path, tmp_path: Path, labels: dict[str, Any], name: str, **kwargs: Any) -> None:
    lines = [f"{k},{v}" for k, v in labels.items()]
    path = tmp_path / f"{name}.csv"
    path.write_text("request_id,label\n" + "\n".join(lines) + "\n", encoding="utf-8")
    ingest_labels(str(base), path, **kwargs)


@pytest.fixture
def binary_log(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """300 requests served by v1 (informative) and shadowed by v2 (noise); 240 labelled."""
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 2, 300)
    good = np.clip(0.5 + 0.3 * (truth - 0.5) + rng.normal(0, 0.2, 300), 0.01, 0.99)
    noise = rng.uniform(0.01, 0.99, 300)
    base = tmp_path / "artifacts"
    log(base, 1, binary_outputs(good))
    log(base, 2, binary_outputs(noise), shadow=True)
    # The first 200 labels arrive a day later, 40 more a week later; 60 never arrive.
    ingest(base, tmp_path, {f"q{i}": truth[i] for i in range(200)}, "day1", task=BINARY)
    ingest(base, tmp_path, {f"q{i}": truth[i] for i in range(200, 240)}, "day7", task=BINARY)
    return base, truth, np.stack([good, noise])


def test_binary_quality_equals_scikit_learn_on_the_labelled_rows(
    binary_log: tuple[Path, np.ndarray, np.ndarray],
) -> None:
    base, truth, scores = binary_log
    joined = joined_predictions(str(base), include_shadow=True)
    report = live_quality(joined, task=BINARY, window=timedelta(hours=1), min_labels=20)

    assert report.metric == "roc_auc" and report.direction == "maximize"
    served, shadow = report.version(1), report.version(2, shadow=True)
    assert served is not None and shadow is not None
    assert report.version(2) is None
    for point, score in ((served, scores[0]), (shadow, scores[1])):
        assert (point.n_predictions, point.n_labelled) == (300, 240)
        assert point.coverage == pytest.approx(0.8)
        assert point.value == pytest.approx(roc_auc_score(truth[:240], score[:240]))
        assert point.ci_low is not None and point.ci_high is not None
        assert point.ci_low < point.value < point.ci_high
    assert served.value is not None and served.value > 0.8
    assert shadow.ci_high is not None and shadow.ci_high < served.value  # noise is worse

    # 300 minutes: windows 00:00-05:00; the last hour (q240..q299) has no label at all.
    windows = [p for p in report.windows if not p.shadow]
    assert [p.window_start for p in windows] == [START + timedelta(hours=h) for h in range(5)]
    assert [p.n_labelled for p in windows] == [60, 60, 60, 60, 0]
    second = windows[1]
    assert second.window_end == START + timedelta(hours=2)
    assert second.value == pytest.approx(roc_auc_score(truth[60:120], scores[0][60:120]))
    assert windows[4].value is None and windows[4].reason == "0 labelled, fewer than 20"


def test_accuracy_and_too_few_or_one_class_labels(tmp_path: Path) -> None:
    base = tmp_path / "artifacts"
    p = np.array([0.9, 0.8, 0.2, 0.7, 0.6])
    log(base, 3, binary_outputs(p))
    ingest(base, tmp_path, {"q0": 1, "q1": 1, "q2": 1}, "ones", task=BINARY)
    joined = joined_predictions(str(base))

    one_class = live_quality(joined, task=BINARY).version(3)
    assert one_class is not None and one_class.value is None
    assert one_class.reason is not None and "class" in one_class.reason
    accuracy = live_quality(joined, task=BINARY, metric="accuracy").version(3)
    assert accuracy is not None and accuracy.value == pytest.approx(2 / 3)
    few = live_quality(joined, task=BINARY, metric="accuracy", min_labels=4).version(3)
    assert few is not None and few.value is None and few.n_labelled == 3
    with pytest.raises(ValueError, match="unknown metric 'rmse'"):
        live_quality(joined, task=BINARY, metric="rmse")


def test_regression_rmse_equals_scikit_learn(tmp_path: Path) -> None:
    base = tmp_path / "artifacts"
    rng = np.random.default_rng(1)
    predicted = rng.normal(10, 2, 120)
    actual = predicted + rng.normal(0, 1, 120)
    log(base, 1, [{"prediction": v} for v in predicted])
    ingest(base, tmp_path, {f"q{i}": actual[i] for i in range(0, 120, 2)}, "y", task="regression")

    report = live_quality(joined_predictions(str(base)), task="regression", n_boot=100)
    point = report.version(1)
    assert point is not None and report.metric == "rmse" and report.direction == "minimize"
    assert point.n_labelled == 60
    assert point.value == pytest.approx(root_mean_squared_error(actual[::2], predicted[::2]))
    assert point.ci_low is not None and point.ci_high is not None
    assert point.ci_low < point.value < point.ci_high


def test_multiclass_accuracy_with_class_names(tmp_path: Path) -> None:
    base = tmp_path / "artifacts"
    predicted = ["cat", "dog", "bird", "cat", "dog", "cat"]
    actual = ["cat", "dog", "cat", "cat", "bird", "cat"]
    log(base, 1, [{"prediction": np.array(v)} for v in predicted])
    labels = {f"q{i}": v for i, v in enumerate(actual)}
    ingest(base, tmp_path, labels, "c", task="multiclass_classification")

    joined = joined_predictions(str(base))
    report = live_quality(joined, task="multiclass_classification", metric="accuracy")
    point = report.version(1)
    assert point is not None and point.value == pytest.approx(accuracy_score(actual, predicted))
    default = live_quality(joined, task="multiclass_classification").version(1)
    assert default is not None and default.value is not None  # f1_macro


def test_report_round_trips_through_json_and_renders_html(
    binary_log: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    base, _, _ = binary_log
    joined = joined_predictions(str(base), include_shadow=True)
    report = live_quality(joined, task=BINARY, window=timedelta(hours=2), n_boot=50)

    text = json.dumps(report.to_json(), allow_nan=False)
    assert QualityReport.from_json(json.loads(text)) == report
    page = report.render_html(tmp_path / "out" / "quality.html").read_text(encoding="utf-8")
    assert page.count('<img src="data:image/png;base64,') == 1
    assert "v2 (shadow)" in page and "roc_auc" in page and "http" not in page.lower()


def test_version_quality_for_the_controller(
    binary_log: tuple[Path, np.ndarray, np.ndarray],
) -> None:
    base, truth, scores = binary_log
    since = START + timedelta(minutes=100)
    found = version_quality(str(base), versions=[1, 2, 9], since=since, task=BINARY)
    value, labelled, error = found[(1, False)]
    assert error is None  # no resamples asked for
    assert labelled == 140
    assert value == pytest.approx(roc_auc_score(truth[100:240], scores[0][100:240]))
    assert found[(2, True)][1] == 140
    assert found[(9, False)] == (None, 0, None)

    empty = version_quality(str(base.parent / "none"), versions=[1], since=since, task=BINARY)
    assert empty == {(1, False): (None, 0, None)}

    _, _, spread = version_quality(str(base), versions=[1], since=since, task=BINARY, n_boot=100)[
        (1, False)
    ]
    assert spread is not None and 0 < spread < 0.2


def test_an_empty_log_window_gives_an_empty_report(
    binary_log: tuple[Path, np.ndarray, np.ndarray],
) -> None:
    base, _, _ = binary_log
    joined = joined_predictions(str(base), since=START + timedelta(days=30))
    assert joined.num_rows == 0
    report = live_quality(joined, task=BINARY, window=timedelta(hours=1))
    assert report.versions == () and report.windows == ()
