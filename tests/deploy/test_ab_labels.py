"""A/B rollouts judged on ground-truth labels joined to the prediction log.

The controller is built as ``conveyor controller`` builds it (:meth:`Controller.from_spec` with
the project folder and the artifact store), so its outcomes come from labels ingested with
:func:`~conveyor.monitor.ingest_labels` and joined (DuckDB) with log files written here as the
server writes them. Clients also report (contradicting) outcomes with ``POST /outcomes``: where
labels give a version's outcomes, they win.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from tests.conftest import write_stats

from conveyor.deploy._observe import observe
from conveyor.monitor._outcomes import version_outcomes
from conveyor.spec import AbRollout, Spec
from conveyor.store import MetadataStore

from .conftest import (
    Clock,
    Rollout,
    classifier_spec,
    ingest,
    log_predictions,
    observed_deployment,
    write_log,
)

N = 200
"""The A/B test's sample size: labelled predictions per version."""


def ab_spec(project: str, promote_if: str) -> Spec:
    """A binary classifier rolled out by an A/B test on accuracy, decided after N labels each."""
    ab = {"policy": "ab", "metric": "accuracy", "test": "two_proportion", "sample_size": N}
    guardrails = {"error_rate": 0.05, "min_requests": 20}
    return classifier_spec(project, {**ab, "promote_if": promote_if, "guardrails": guardrails})


def answers(labels: np.ndarray, right: int, seed: int) -> np.ndarray:
    """Scores whose predicted class (score > 0.5) is right for exactly ``right`` rows."""
    correct = np.zeros(len(labels), dtype=bool)
    correct[np.random.default_rng(seed).choice(len(labels), right, replace=False)] = True
    predicted = np.where(correct, labels, 1 - labels)
    return np.where(predicted == 1, 0.8, 0.2)


def serve_step(
    store: MetadataStore, project: str, artifacts: Path, at: datetime, right: tuple[int, int]
) -> tuple[list[str], np.ndarray]:
    """Both versions answer N requests in the step, ``right`` of them correctly (v1, v2).

    Serving statistics are healthy, and clients reported outcomes that say the opposite of
    the labels (v2 always wrong, v1 always right) on a few requests.
    """
    labels = np.tile([0, 1], N // 2)
    write_stats(
        store, project, 1, 300, at=at + timedelta(seconds=10),
        outcome_n=40, outcome_sum=40.0, outcome_sum_sq=40.0,
    )  # fmt: skip
    write_stats(
        store, project, 2, 300, at=at + timedelta(seconds=10),
        outcome_n=40, outcome_sum=0.0, outcome_sum_sq=0.0,
    )  # fmt: skip
    start = at + timedelta(seconds=1)
    ids_1 = log_predictions(artifacts, 1, answers(labels, right[0], 1), start, "champion")
    ids_2 = log_predictions(artifacts, 2, answers(labels, right[1], 2), start, "challenger")
    return ids_1 + ids_2, np.concatenate([labels, labels])


def test_a_challenger_right_much_more_often_on_labels_is_promoted(
    store: MetadataStore, clock: Clock, artifacts: Path, rollout: Rollout
) -> None:
    spec = ab_spec(rollout.project, promote_if="better")
    start = rollout.start(spec)
    # Before the step began v2 was always wrong; only the step's own predictions count.
    early = np.tile([0, 1], 50)
    wrong = np.where(early == 1, 0.2, 0.8)
    early_ids = log_predictions(artifacts, 2, wrong, clock() - timedelta(hours=1), "old")
    ids, labels = serve_step(store, rollout.project, artifacts, clock(), right=(120, 180))
    half = [i for i, rid in enumerate(ids) if int(rid.rsplit("-", 1)[1]) < N // 2]
    ingest(artifacts, early_ids + [ids[i] for i in half], [*early, *labels[half]], "first")
    clock.advance(61)

    held = rollout.controller(spec).tick()

    assert (held.applied, held.decision.action) == (False, "hold")
    assert "collecting outcomes: 100/200 per version before the two_proportion test" in (
        held.message
    )
    assert held.decision.metrics["n_challenger"] == held.decision.metrics["n_champion"] == 100

    rest = [i for i in range(len(ids)) if i not in set(half)]
    ingest(artifacts, [ids[i] for i in rest], labels[rest], "second")
    # A new controller: the first one would reuse the outcomes it measured for this step.
    result = rollout.controller(spec).tick()

    assert (result.applied, result.decision.action) == (True, "promote")
    assert str(result.deployment.state) == "promoted"
    assert rollout.live.alias("champion").version == 2
    last = store.list_deployment_events(start.id)[-1]
    assert (last.kind, last.actor) == ("promoted", "controller")
    metrics = last.metrics
    # Judged on the labels (200 each), not on the 40 outcomes clients reported.
    assert (metrics["n_champion"], metrics["n_challenger"]) == (N, N)
    assert metrics["estimate_champion"] == pytest.approx(120 / N)
    assert metrics["estimate_challenger"] == pytest.approx(180 / N)
    assert metrics["effect"] == pytest.approx(0.3)
    assert 0 < metrics["ci_low"] < 0.3 < metrics["ci_high"]
    assert metrics["p_value"] < 1e-6
    assert "two_proportion test on accuracy after 200 and 200 outcomes" in last.reason
    assert "v2 is better → promoting v2" in last.reason


@pytest.mark.parametrize(
    ("promote_if", "action", "state", "champion", "verdict"),
    [
        ("better", "rollback", "rolled_back", 1, "no significant difference and promote_if"),
        ("not_worse", "promote", "promoted", 2, "no significant difference, v2 is not worse"),
    ],
)
def test_equal_accuracy_on_labels_is_no_significant_effect(
    rollout: Rollout, promote_if: str, action: str, state: str, champion: int, verdict: str
) -> None:
    store = rollout.store
    start, controller = rollout.begin(ab_spec(rollout.project, promote_if=promote_if))
    at = rollout.clock()
    ids, labels = serve_step(store, rollout.project, rollout.artifacts, at, right=(150, 150))
    ingest(rollout.artifacts, ids, labels, "labels")
    rollout.clock.advance(61)

    result = controller.tick()

    assert (result.applied, result.decision.action) == (True, action)
    assert result.decision.guardrail is None  # the experiment's end, not an alarm
    assert str(result.deployment.state) == state
    assert rollout.live.alias("champion").version == champion
    metrics = store.list_deployment_events(start.id)[-1].metrics
    assert (metrics["n_champion"], metrics["n_challenger"]) == (N, N)
    assert metrics["estimate_champion"] == metrics["estimate_challenger"] == 0.75
    assert metrics["effect"] == pytest.approx(0.0)
    assert metrics["ci_low"] < 0 < metrics["ci_high"]
    assert metrics["p_value"] > 0.05
    assert verdict in result.decision.reason


def test_observe_prefers_label_outcomes_to_reported_ones(store: MetadataStore) -> None:
    began = datetime.fromisoformat("2024-05-01T12:00:00+00:00")
    rollout = AbRollout.model_validate({"policy": "ab", "metric": "accuracy"})
    record = observed_deployment(store, rollout, began, weights={3: 50.0, 4: 50.0})
    for version in (3, 4):
        write_stats(
            store, record.project, version, 100, at=began + timedelta(seconds=10),
            outcome_n=30, outcome_sum=12.0, outcome_sum_sq=12.0,
        )  # fmt: skip
    asked: list[tuple[tuple[int, ...], datetime, str]] = []

    def outcomes(
        versions: Any, since: datetime, metric: str
    ) -> dict[int, tuple[int, float, float]]:
        asked.append((tuple(versions), since, metric))
        return {3: (80, 60.0, 60.0), 4: (0, 0.0, 0.0)}

    seen = observe(store, record, now=began + timedelta(seconds=70), outcomes=outcomes)

    assert asked == [((3, 4), began, "accuracy")]
    champion, challenger = seen.champion, seen.challenger
    assert (champion.outcome_n, champion.outcome_sum, champion.outcome_sum_sq) == (80, 60, 60)
    # No label for v4 yet: what clients reported still counts.
    assert (challenger.outcome_n, challenger.outcome_sum) == (30, 12.0)
    assert challenger.requests == 100


def binary_columns(predicted: list[Any], scores: list[float]) -> dict[str, Any]:
    proba = np.column_stack([1 - np.array(scores), scores])
    return {
        "out_prediction": predicted,
        "out_proba": pa.FixedSizeListArray.from_arrays(pa.array(proba.ravel()), 2),
    }


def test_version_outcomes_match_a_hand_count(tmp_path: Path) -> None:
    store = tmp_path / "binary" / "artifacts"
    since = datetime.fromisoformat("2024-05-01T12:00:00+00:00")
    after = since + timedelta(seconds=5)
    # v1: 6 answers; labels for 5 (the last is unlabelled); right on rows 0, 1, 3 → 3 of 5.
    v1 = write_log(store, 1, after, "v1", binary_columns([1, 0, 1, 1, 0, 1], [0.9] * 6))
    v1_labels = [1, 0, 0, 1, 1]
    # v1 before the step: labelled, right, not counted.
    old = write_log(
        store, 1, since - timedelta(minutes=5), "old", binary_columns([1] * 3, [0.9] * 3)
    )
    # v2 logs class names: its class is whether the positive probability exceeds 0.5.
    scores = [0.7, 0.2, 0.6, 0.4]
    v2 = write_log(store, 2, after, "v2", binary_columns(["yes", "no", "yes", "no"], scores))
    v2_labels = [1, 1, 1, 0]  # right, wrong, right, right → 3 of 4
    # Mirrored answers of v2 (shadow) are not what callers got: not counted.
    mirror = write_log(
        store, 2, after, "mirror", binary_columns(["yes"] * 3, [0.9] * 3), shadow=True
    )
    ingest(store, v1[:5] + old + v2 + mirror, v1_labels + [1] * 3 + v2_labels + [1] * 3, "b")

    measured = version_outcomes(
        str(store), versions=[1, 2, 7], since=since, metric="accuracy", task="binary_classification"
    )

    assert measured == {1: (5, 3.0, 3.0), 2: (4, 3.0, 3.0), 7: (0, 0.0, 0.0)}
    assert (
        version_outcomes(
            str(store), versions=[1], since=since, metric="converted", task="binary_classification"
        )
        == {}
    )  # an outcome named by the user: only clients know it
    assert (
        version_outcomes(
            str(store),
            versions=[1],
            since=since,
            metric="absolute_error",
            task="binary_classification",
        )
        == {}
    )  # an error is a regression outcome

    regression = tmp_path / "regression" / "artifacts"
    assert (
        version_outcomes(
            str(regression), versions=[1], since=since, metric="absolute_error", task="regression"
        )
        == {}
    )  # nothing logged yet
    ids = write_log(regression, 1, after, "r", {"out_prediction": [1.0, 2.0, 4.0, 9.0]})
    ingest(regression, ids[:3], [1.5, 2.0, 1.0], "r", task="regression")
    absolute = version_outcomes(
        str(regression), versions=[1], since=since, metric="absolute_error", task="regression"
    )
    squared = version_outcomes(
        str(regression), versions=[1], since=since, metric="squared_error", task="regression"
    )
    assert absolute == {1: (3, pytest.approx(3.5), pytest.approx(9.25))}  # 0.5, 0, 3
    assert squared == {1: (3, pytest.approx(9.25), pytest.approx(81.0625))}  # 0.25, 0, 9

    multiclass = tmp_path / "multiclass" / "artifacts"
    ids = write_log(multiclass, 1, after, "m", {"out_prediction": ["setosa", "versicolor", "2"]})
    ingest(multiclass, ids, ["setosa", "virginica", "2.0"], "m", task="multiclass_classification")
    assert version_outcomes(
        str(multiclass),
        versions=[1],
        since=since,
        metric="accuracy",
        task="multiclass_classification",
    ) == {1: (3, 2.0, 2.0)}  # class 2 is label 2.0
