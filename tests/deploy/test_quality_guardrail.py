"""The ``quality_drop`` guardrail on real labels joined to a real prediction log.

The controller is built the way ``conveyor controller`` builds it (:meth:`Controller.from_spec`
with the project folder and the artifact store), so its quality source is the real one: labels
ingested with :func:`~conveyor.monitor.ingest_labels`, joined (DuckDB) with the Parquet files
of the prediction log written here as the server writes them, measured per version since the
step began. Serving statistics are healthy in every test, so only quality can roll back.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import write_stats

from conveyor.deploy import Controller
from conveyor.deploy._label_sources import Cached as _Cached
from conveyor.deploy._observe import observe
from conveyor.errors import SourceError
from conveyor.spec import ShadowRollout, Spec
from conveyor.store import DeploymentRecord, MetadataStore

from .conftest import Clock, Rollout, classifier_spec, ingest, log_predictions, observed_deployment

N = 80
"""Labelled predictions per version in a step (more than ``min_requests``)."""


def spec_for(project: str) -> Spec:
    """A binary classifier watched on live ROC AUC, rolled out by canary with a 0.1 limit."""
    guardrails = {"error_rate": 0.05, "quality_drop": 0.1, "min_requests": 20}
    canary = {"policy": "canary", "steps": [10, 50, 100], "guardrails": guardrails}
    return classifier_spec(project, canary, monitor={"quality": {}})


def outcomes(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and the scores of a good model on them (ROC AUC around 0.95)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, N)
    scores = np.clip(0.5 + 0.3 * (2 * labels - 1) + rng.normal(0, 0.2, N), 0.01, 0.99)
    return labels, scores


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def begin(rollout: Rollout) -> tuple[DeploymentRecord, Controller]:
    """Roll v2 out under :func:`spec_for`; both versions serve the step without errors.

    Returns the deployment and its controller.
    """
    started = rollout.begin(spec_for(rollout.project))
    at = rollout.clock() + timedelta(seconds=10)
    write_stats(rollout.store, rollout.project, 2, 150, at=at)
    write_stats(rollout.store, rollout.project, 1, 600, at=at)
    return started


def test_a_challenger_much_worse_on_real_labels_is_rolled_back(
    store: MetadataStore, clock: Clock, artifacts: Path, rollout: Rollout
) -> None:
    start, ctl = begin(rollout)
    labels, good = outcomes(seed=1)
    bad = 1 - good  # the challenger's scores are inverted: it ranks every pair wrongly
    ids_1 = log_predictions(artifacts, 1, good, clock() + timedelta(seconds=1), "champion")
    ids_2 = log_predictions(artifacts, 2, bad, clock() + timedelta(seconds=1), "challenger")
    ingest(artifacts, ids_1 + ids_2, np.concatenate([labels, labels]), "labels")
    clock.advance(30)  # half the step: only a breach may change anything now

    result = ctl.tick()

    assert (result.applied, result.decision.action) == (True, "rollback")
    assert result.decision.guardrail == "quality_drop"
    assert str(result.deployment.state) == "rolled_back"
    assert result.deployment.weights == {1: 100.0, 2: 0.0}
    old, new = auc(labels, good), auc(labels, bad)
    assert old > 0.85 and new < 0.15
    last = store.list_deployment_events(start.id)[-1]
    assert (last.kind, last.actor, last.metrics["guardrail"]) == (
        "rolled_back", "controller", "quality_drop",
    )  # fmt: skip
    assert last.metrics["champion_quality"] == pytest.approx(old)
    assert last.metrics["challenger_quality"] == pytest.approx(new)
    assert last.metrics["quality_drop"] == pytest.approx(old - new)
    assert last.metrics["quality_drop_limit"] == 0.1
    # The drop is shown with its noise margin (1.645 standard errors of the difference).
    shown = rf"quality drop {old - new:.3g} ± [0-9.e-]+ > 0\.1 \({new:.3g} vs {old:.3g}\)"
    assert re.search(f"guardrail quality_drop breached: {shown}", last.reason), last.reason
    assert "rolling back to v1" in last.reason
    assert rollout.live.alias("champion").version == 1


def test_an_equally_good_challenger_holds_then_advances(
    store: MetadataStore, clock: Clock, artifacts: Path, rollout: Rollout
) -> None:
    start, ctl = begin(rollout)
    # Before the step began, v2 answered badly; only the step's own predictions may count.
    early_labels, early = outcomes(seed=9)
    early_ids = log_predictions(artifacts, 2, 1 - early, clock() - timedelta(minutes=5), "old")
    labels_1, scores_1 = outcomes(seed=1)
    labels_2, scores_2 = outcomes(seed=2)
    ids_1 = log_predictions(artifacts, 1, scores_1, clock() + timedelta(seconds=1), "champion")
    ids_2 = log_predictions(artifacts, 2, scores_2, clock() + timedelta(seconds=1), "challenger")
    ingest(
        artifacts,
        early_ids + ids_1 + ids_2,
        np.concatenate([early_labels, labels_1, labels_2]),
        "labels",
    )
    old, new = auc(labels_1, scores_1), auc(labels_2, scores_2)
    assert abs(old - new) < 0.1

    clock.advance(30)
    held = ctl.tick()
    assert (held.applied, held.decision.action) == (False, "hold")
    within = rf"quality drop {old - new:.3g} ± [0-9.e-]+ ≤ 0\.1 \({new:.3g} vs {old:.3g}\)"
    assert re.search(within, held.message), held.message
    assert held.decision.metrics["challenger_quality"] == pytest.approx(new)

    clock.advance(31)
    advanced = ctl.tick()
    assert (advanced.applied, advanced.decision.action) == (True, "advance")
    assert advanced.deployment.step == 1
    last = store.list_deployment_events(start.id)[-1]
    assert last.kind == "advanced"
    assert last.metrics["champion_quality"] == pytest.approx(old)
    assert last.metrics["challenger_quality"] == pytest.approx(new)


def test_before_labels_arrive_quality_is_not_judged_and_the_step_advances(
    clock: Clock, artifacts: Path, rollout: Rollout
) -> None:
    _, ctl = begin(rollout)
    _, good = outcomes(seed=1)
    log_predictions(artifacts, 1, good, clock() + timedelta(seconds=1), "champion")
    log_predictions(artifacts, 2, 1 - good, clock() + timedelta(seconds=1), "challenger")

    clock.advance(30)
    held = ctl.tick()
    assert (held.applied, held.decision.action) == (False, "hold")
    assert "quality n/a (no labels yet)" in held.message
    assert "challenger_quality" not in held.decision.metrics
    assert "quality_drop" not in held.decision.metrics

    clock.advance(31)
    advanced = ctl.tick()
    assert (advanced.applied, advanced.decision.action) == (True, "advance")
    assert "quality n/a (no labels yet)" in advanced.decision.reason


def test_an_unreadable_log_leaves_quality_unjudged_and_other_guardrails_working(
    rollout: Rollout, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="conveyor.deploy._label_sources")
    _, ctl = rollout.begin(spec_for(rollout.project))
    clock, artifacts = rollout.clock, rollout.artifacts
    folder = artifacts / "predictions" / f"date={clock():%Y-%m-%d}" / "model_version=2"
    folder.mkdir(parents=True)
    (folder / "part-w0-torn.parquet").write_bytes(b"PAR1 cut short by a crash")
    write_stats(rollout.store, rollout.project, 2, 30, at=clock() + timedelta(seconds=10), errors=6)
    clock.advance(5)

    result = ctl.tick()

    assert (result.applied, result.decision.guardrail) == (True, "error_rate")
    assert "quality_drop" not in result.decision.metrics  # not measured, not an error
    [line] = [r.getMessage() for r in caplog.records if "live quality" in r.getMessage()]
    assert "cannot join the prediction log" in line


def test_observe_takes_each_versions_quality_from_the_source(store: MetadataStore) -> None:
    began = datetime.fromisoformat("2024-05-01T12:00:00+00:00")
    rollout = ShadowRollout.model_validate(
        {"policy": "shadow", "guardrails": {"quality_drop": 0.05}}
    )
    shadowed = {"weights": {3: 100.0, 4: 0.0}, "shadow_version": 4, "shadow_rate": 1.0}
    record = observed_deployment(store, rollout, began, **shadowed)
    asked: list[tuple[tuple[int, ...], datetime]] = []

    def quality(versions: Any, since: datetime) -> dict[tuple[int, bool], tuple[float | None, int]]:
        asked.append((tuple(versions), since))
        return {(3, False): (0.91, 40), (4, False): (0.5, 2), (4, True): (0.84, 37)}

    seen = observe(store, record, now=began + timedelta(seconds=5), quality=quality)

    assert asked == [((3, 4), began)]  # both versions, since the rollout's first step
    assert (seen.champion.quality, seen.champion.quality_n) == (0.91, 40)
    # A shadow is judged on its mirrored predictions, as for the other guardrails.
    assert (seen.challenger.quality, seen.challenger.quality_n) == (0.84, 37)

    def unmeasured(versions: Any, since: datetime) -> dict[tuple[int, bool], Any]:
        return {(3, False): (None, 0)}

    blank = observe(store, record, now=began, quality=unmeasured)
    assert (blank.champion.quality, blank.champion.quality_n) == (None, 0)
    assert (blank.challenger.quality, blank.challenger.quality_n) == (None, 0)


def test_quality_is_measured_over_the_whole_rollout_not_the_step(store: MetadataStore) -> None:
    # At a later step (the 100% one above all, where the champion serves nothing), the versions
    # are compared on every labelled prediction since the rollout began.
    rollout = ShadowRollout.model_validate({"policy": "shadow"})
    later = datetime.now(UTC) + timedelta(hours=1)
    record = observed_deployment(store, rollout, later, step=1, weights={3: 0.0, 4: 100.0})
    asked: list[datetime] = []

    def quality(versions: Any, since: datetime) -> dict[tuple[int, bool], Any]:
        asked.append(since)
        return {}

    observe(store, record, now=later + timedelta(seconds=5), quality=quality)
    assert asked == [record.created_at] and record.created_at < later


def test_cached_quality_reuses_an_answer_within_its_period() -> None:
    calls: list[datetime] = []

    def source(versions: Any, since: datetime) -> dict[tuple[int, bool], tuple[float | None, int]]:
        calls.append(since)
        return {(1, False): (0.5 + len(calls), len(calls))}

    t0 = datetime.fromisoformat("2024-05-01T12:00:00+00:00")
    cached = _Cached(source, 3600.0)
    first = cached((1, 2), t0)
    assert cached([1, 2], t0) == first == {(1, False): (1.5, 1)}
    assert len(calls) == 1  # reused: the log and labels were not read again
    later = t0 + timedelta(seconds=90)  # a new step: another question, asked at once
    assert cached((1, 2), later) == {(1, False): (2.5, 2)}
    assert calls == [t0, later]

    every_time = _Cached(source, 0.0)  # a period that is over at once
    every_time((1, 2), t0)
    every_time((1, 2), t0)
    assert len(calls) == 4

    def failing(versions: Any, since: datetime) -> dict[tuple[int, bool], Any]:
        raise SourceError("no prediction has been logged")

    assert _Cached(failing, 3600.0)((1, 2), t0) == {}  # judged without quality, not an error


@pytest.mark.parametrize(
    ("error", "breached"),
    [(None, True), (0.005, True), (0.03, False)],
    ids=["no-error-known", "precise-labels", "noisy-labels"],
)
def test_a_quality_drop_must_clear_the_noise_of_the_labels(
    error: float | None, breached: bool
) -> None:
    from conveyor.deploy._guardrails import VersionStats, check_guardrails
    from conveyor.spec import Guardrails

    old = VersionStats(requests=500, quality=0.70, quality_n=400, quality_se=error)
    new = VersionStats(requests=500, quality=0.62, quality_n=400, quality_se=error)
    checks = check_guardrails(
        Guardrails(error_rate=None, quality_drop=0.05, min_requests=100), old, new
    )
    (quality,) = [c for c in checks if c.name == "quality_drop"]
    assert quality.breached is breached
    assert quality.value == pytest.approx(0.08)
    assert ("±" in quality.text) is (error is not None)
