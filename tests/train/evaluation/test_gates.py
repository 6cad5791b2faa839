"""check_gates(): every outcome, with the numbers in the sentence."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.spec import ChampionComparison, Direction, GateSpec, Task
from conveyor.train.evaluation import (
    NO_CHAMPION,
    Evaluation,
    MetricValue,
    check_gates,
    compare_paired,
    evaluate,
)

MAX, MIN = Direction.maximize, Direction.minimize


def _evaluation(rows: int = 1000, **values: tuple[float, float, float]) -> Evaluation:
    directions = {"roc_auc": MAX, "accuracy": MAX, "log_loss": MIN, "brier": MIN}
    return Evaluation(
        Task.binary_classification,
        rows,
        {
            name: MetricValue(name, v, lo, hi, directions[name], 200)
            for name, (v, lo, hi) in values.items()
        },
    )


CHALLENGER = _evaluation(roc_auc=(0.684, 0.671, 0.697), log_loss=(0.412, 0.39, 0.43))


def test_min_fails_below_and_passes_at_or_above() -> None:
    failed = check_gates(GateSpec(min={"roc_auc": 0.70}), CHALLENGER)
    assert not failed.passed
    assert failed.checks[0].name == "min.roc_auc"
    assert failed.checks[0].detail == "roc_auc 0.684 [0.671, 0.697] is below the minimum 0.7"
    assert failed.summary() == (
        "failed 1 of 1 gate checks: min.roc_auc: roc_auc 0.684 [0.671, 0.697] "
        "is below the minimum 0.7"
    )
    passed = check_gates(GateSpec(min={"roc_auc": 0.684}), CHALLENGER)
    assert passed.passed
    assert passed.checks[0].detail == "roc_auc 0.684 [0.671, 0.697] meets the minimum 0.684"
    assert passed.summary() == "passed all 1 gate checks"


def test_max_bounds() -> None:
    passed = check_gates(GateSpec(max={"log_loss": 0.5}), CHALLENGER)
    assert passed.passed
    assert passed.checks[0].detail == "log_loss 0.412 [0.390, 0.430] is within the maximum 0.5"
    failed = check_gates(GateSpec(max={"log_loss": 0.4}), CHALLENGER)
    assert not failed.passed
    assert failed.checks[0].detail == "log_loss 0.412 [0.390, 0.430] is above the maximum 0.4"


def test_every_check_is_reported_not_just_the_first_failure() -> None:
    gate = GateSpec(min={"roc_auc": 0.8}, max={"log_loss": 0.3, "brier": 0.2})
    result = check_gates(gate, CHALLENGER)
    assert [(c.name, c.passed) for c in result.checks] == [
        ("min.roc_auc", False),
        ("max.log_loss", False),
        ("max.brier", False),
    ]
    assert result.checks[2].detail == (
        "brier is not in the model's evaluation; available: roc_auc, log_loss"
    )
    assert result.summary().startswith("failed 3 of 3 gate checks: min.roc_auc: ")
    assert result.to_json()["checks"][1] == {
        "name": "max.log_loss",
        "passed": False,
        "detail": "log_loss 0.412 [0.390, 0.430] is above the maximum 0.3",
    }


def test_vs_champion_without_champion_passes() -> None:
    gate = GateSpec(vs_champion=ChampionComparison(metric="roc_auc"))
    result = check_gates(gate, CHALLENGER, None)
    assert result.passed
    assert result.checks[0].name == "vs_champion.roc_auc"
    assert result.checks[0].detail == NO_CHAMPION == "no champion yet: this model becomes the first"


def test_vs_champion_within_and_beyond_the_allowed_regression() -> None:
    champion = _evaluation(roc_auc=(0.690, 0.677, 0.703), log_loss=(0.400, 0.38, 0.42))
    gate = GateSpec(vs_champion=ChampionComparison(metric="roc_auc", max_regression=0.01))
    passed = check_gates(gate, CHALLENGER, champion)
    assert passed.passed
    assert passed.checks[0].detail == (
        "roc_auc 0.684 [0.671, 0.697] vs champion 0.690: change -0.006 is within the "
        "allowed regression 0.01"
    )
    strict = GateSpec(vs_champion=ChampionComparison(metric="roc_auc", max_regression=0.005))
    failed = check_gates(strict, CHALLENGER, champion)
    assert not failed.passed
    assert failed.checks[0].detail == (
        "roc_auc 0.684 [0.671, 0.697] vs champion 0.690: change -0.006 is beyond the "
        "allowed regression 0.005"
    )


def test_vs_champion_on_a_lower_is_better_metric() -> None:
    champion = _evaluation(roc_auc=(0.690, 0.677, 0.703), log_loss=(0.400, 0.38, 0.42))
    gate = GateSpec(vs_champion=ChampionComparison(metric="log_loss"))
    result = check_gates(gate, CHALLENGER, champion)  # log loss rose by 0.012: worse
    assert not result.passed
    assert "change +0.012 is beyond the allowed regression 0" in result.checks[0].detail
    better = _evaluation(log_loss=(0.5, 0.48, 0.52))
    assert check_gates(gate, CHALLENGER, better).passed  # log loss fell: better


def test_vs_champion_missing_metric_or_other_holdout_fails() -> None:
    gate = GateSpec(vs_champion=ChampionComparison(metric="roc_auc"))
    no_auc = _evaluation(log_loss=(0.4, 0.38, 0.42))
    result = check_gates(gate, CHALLENGER, no_auc)
    assert not result.passed
    assert result.checks[0].detail == (
        "roc_auc is not in the champion's evaluation; available: log_loss"
    )
    result = check_gates(gate, no_auc, CHALLENGER)
    assert result.checks[0].detail == (
        "roc_auc is not in the challenger's evaluation; available: log_loss"
    )
    elsewhere = _evaluation(rows=900, roc_auc=(0.6, 0.58, 0.62))
    result = check_gates(gate, CHALLENGER, elsewhere)
    assert not result.passed
    assert result.checks[0].detail == (
        "challenger and champion were evaluated on different holdouts (1000 vs 900 rows); "
        "evaluate the champion on the current holdout"
    )


def test_unknown_metric_names_what_is_available(cancer: Any) -> None:
    evaluation = evaluate(Task.binary_classification, cancer.y, y_pred=cancer.pred)
    result = check_gates(GateSpec(min={"roc_auc": 0.9}), evaluation)
    assert not result.passed
    assert result.checks[0].detail == (
        "roc_auc is not in the model's evaluation (needs y_score); available: accuracy, "
        "balanced_accuracy, f1, precision, recall"
    )


def test_real_models_with_paired_interval(cancer: Any, weak_cancer: Any) -> None:
    strong = evaluate(Task.binary_classification, cancer.y, y_score=cancer.score)
    weak = evaluate(Task.binary_classification, cancer.y, y_score=weak_cancer.score)
    rule = ChampionComparison(metric="roc_auc", max_regression=0.01, confidence=0.9)
    paired = compare_paired(
        Task.binary_classification,
        cancer.y,
        weak_cancer.score,
        cancer.score,
        "roc_auc",
        confidence=rule.confidence,
    )
    gate = GateSpec(min={"roc_auc": 0.9}, vs_champion=rule)
    result = check_gates(gate, weak, strong, paired=paired)
    assert result.checks[0].passed  # the weak model still clears the absolute bar
    check = result.checks[1]
    assert not check.passed
    diff = paired.value
    assert check.detail.endswith(
        f"; paired difference {diff:+.3f} [{paired.low:+.3f}, {paired.high:+.3f}] "
        "(90% CI, 1000 resamples)"
    )
    assert f"change {diff:+.3f} is beyond" in check.detail
    assert result.summary().startswith("failed 1 of 2 gate checks: vs_champion.roc_auc: ")
    # Swapped roles: the strong model replaces the weak champion.
    assert check_gates(gate, strong, weak).passed
    with pytest.raises(ValueError, match="paired= compares 'roc_auc' but the gate compares"):
        check_gates(
            GateSpec(vs_champion=ChampionComparison(metric="log_loss")),
            weak,
            strong,
            paired=paired,
        )
