"""Section models: defaults, immutability, durations, and the checks that span fields."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from pydantic import ValidationError

from conveyor.spec import (
    AbRollout,
    CanaryRollout,
    DriftMethod,
    HttpSource,
    LoadedSpec,
    NextLinkPagination,
    SchemaSpec,
    ShadowRollout,
    Spec,
    SqliteOnlineStore,
    format_duration,
)

Parse = Callable[..., LoadedSpec]
Problems = Callable[..., list[str]]

MODEL = """\
name: demo
model:
  task: binary_classification
  target: delayed
"""


def test_minimal_spec_has_safe_defaults(parse: Parse) -> None:
    spec = parse("name: demo\n").spec
    assert spec.sources == {} and spec.steps == {}
    assert spec.model is None and spec.dataset is None and spec.schema_ is None
    assert isinstance(spec.rollout, CanaryRollout)
    assert spec.rollout.steps == [5, 25, 50, 100]
    assert spec.rollout.guardrails.error_rate == 0.01
    assert spec.serve.workers == 1 and spec.serve.model_threads == 1
    assert spec.serve.host == "127.0.0.1"
    assert spec.monitor.drift.thresholds[DriftMethod.psi] == 0.2
    assert spec.settings.db_url is None


def test_models_are_frozen(parse: Parse) -> None:
    spec = parse(MODEL).spec
    with pytest.raises(ValidationError, match="frozen"):
        spec.name = "other"  # type: ignore[misc]
    assert spec.model is not None
    with pytest.raises(ValidationError, match="frozen"):
        spec.model.target = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        spec.serve.batching.max_batch_size = 1  # type: ignore[misc]


def test_python_construction_forbids_unknown_fields_and_accepts_schema_by_both_names() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Spec.model_validate({"name": "demo", "modle": {}})
    by_alias = Spec.model_validate({"name": "demo", "schema": {"strict": True}})
    by_name = Spec(name="demo", schema_=SchemaSpec(strict=True))
    assert by_alias == by_name
    assert by_name.model_dump(by_alias=True)["schema"]["strict"] is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", 30), ("15m", 900), ("6h", 21600), ("1d", 86400), ("2w", 1209600), ("1h30m", 5400)],
)
def test_durations(parse: Parse, text: str, expected: int) -> None:
    spec = parse(f"name: demo\nmonitor: {{retrain: {{schedule: '@daily', cooldown: {text}}}}}\n")
    assert spec.spec.monitor.retrain is not None
    assert spec.spec.monitor.retrain.cooldown == timedelta(seconds=expected)


def test_durations_dump_canonically() -> None:
    assert format_duration(timedelta(hours=6)) == "6h"
    assert format_duration(timedelta(days=14)) == "14d"
    assert format_duration(timedelta(seconds=5400)) == "1h30m"
    assert format_duration(timedelta(0)) == "0s"
    assert format_duration(timedelta(seconds=1.5)) == "1.5s"


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("6", "'6'"),
        ("6 hours", "'6 hours'"),
        ("1.5h", "'1.5h'"),
        ("60", "60; add a unit: s, m, h, d or w"),
    ],
)
def test_bad_durations(problems: Problems, value: str, found: str) -> None:
    value = f"'{value}'" if value != "60" else value
    assert problems(f"name: demo\nmonitor: {{quality: {{label_delay: {value}}}}}\n")[1:] == [
        "  line 2: monitor.quality.label_delay: expected a duration such as '30s', '15m', '6h', "
        f"'1d', '2w' or '1h30m', found {found}"
    ]


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        (
            "[0, 50, 100]",
            "rollout.steps[0]: expected a percentage above 0 and at most 100, found 0",
        ),
        ("[50, 150]", "rollout.steps[1]: expected a percentage above 0 and at most 100, found 150"),
        (
            "[10, 10, 100]",
            "rollout.steps[1]: steps must increase: 10 does not exceed the step before it (10)",
        ),
        ("[10, 50]", "rollout.steps[1]: the last step must be 100 (all traffic), found 50"),
        ("[]", "rollout.steps: expected at least 1 item, found a list"),
    ],
)
def test_rollout_steps(problems: Problems, steps: str, problem: str) -> None:
    assert problems(f"name: demo\nrollout:\n  steps: {steps}\n")[1:] == [f"  line 3: {problem}"]


def test_rollout_policies(parse: Parse, problems: Problems) -> None:
    assert isinstance(parse("name: d\nrollout: {policy: ab, split: 20}\n").spec.rollout, AbRollout)
    shadow = parse("name: d\nrollout: {policy: shadow}\n").spec.rollout
    assert isinstance(shadow, ShadowRollout) and shadow.sample_rate == 1.0
    # keys of another policy are unknown for this one
    assert problems("name: d\nrollout: {policy: shadow, steps: [100]}\n")[1:] == [
        "  line 2: rollout.steps: unknown key 'steps'; allowed keys: policy, "
        "min_requests_per_step, min_seconds_per_step, guardrails, auto_rollback, sample_rate, "
        "min_agreement, max_mean_abs_diff"
    ]


@pytest.mark.parametrize(
    ("param", "problem"),
    [
        ("{type: float, low: 0.3, high: 0.01}", "lr.low: low (0.3) must be less than high (0.01)"),
        (
            "{type: float, low: 0, high: 1, log: true}",
            "lr.low: low (0) must be greater than 0 when log is true",
        ),
        (
            "{type: int, low: 1, high: 64, log: true, step: 2}",
            "lr.step: step cannot be combined with log: true",
        ),
        ("{type: int, low: 1.5, high: 3}", "lr.low: expected a whole number, found 1.5"),
        ("{type: categorical, choices: [a, b, a]}", "lr.choices[2]: 'a' is listed twice"),
        (
            "{type: categorical, choices: [[1]]}",
            "lr.choices[0]: expected a single value (a string, number or true/false), found a list",
        ),
        (
            "{type: flaot, low: 1, high: 2}",
            "lr.type: unknown type 'flaot'; expected one of 'float', 'int', 'categorical'; "
            "did you mean 'float'?",
        ),
    ],
)
def test_tune_space(problems: Problems, param: str, problem: str) -> None:
    text = MODEL + f"  tune:\n    space:\n      lr: {param}\n"
    assert problems(text)[1:] == [f"  line 7: model.tune.space.{problem}"]


def test_tune_metric_must_suit_the_task(problems: Problems) -> None:
    text = MODEL + "  tune: {metric: rsme, space: {a: {type: int, low: 1, high: 2}}}\n"
    assert problems(text)[1:] == [
        "  line 5: model.tune.metric: unknown metric 'rsme' for task binary_classification; "
        "expected one of 'roc_auc', 'pr_auc', 'accuracy', 'balanced_accuracy', 'f1', "
        "'precision', 'recall', 'log_loss', 'brier', 'ece'"
    ]
    text = MODEL.replace("binary_classification", "regression") + (
        "  tune: {metric: rsme, direction: maximize, space: {a: {type: int, low: 1, high: 2}}}\n"
    )
    assert problems(text)[1:] == [
        "  line 5: model.tune.metric: unknown metric 'rsme' for task regression; expected one "
        "of 'rmse', 'mae', 'mape', 'median_ae', 'r2'; did you mean 'rmse'?"
    ]
    text = text.replace("rsme", "rmse")
    assert problems(text)[1:] == [
        "  line 5: model.tune.direction: rmse is better when lower; use direction: minimize or "
        "leave direction out"
    ]


def test_target_cannot_be_excluded(problems: Problems) -> None:
    text = MODEL + "  features:\n    exclude: [dep_delay, delayed]\n"
    assert problems(text)[1:] == [
        "  line 6: model.features.exclude[1]: 'delayed' is the target; the target is never a "
        "feature, so it must not be listed in exclude"
    ]


def test_algorithm_names(parse: Parse, problems: Problems) -> None:
    text = MODEL + "  algorithm: sklearn:sklearn.ensemble.RandomForestClassifier\n"
    assert parse(text).spec.model is not None
    assert problems(MODEL + "  algorithm: xgbost\n")[1:] == [
        "  line 5: model.algorithm: expected 'lightgbm', 'xgboost', 'torch_mlp' or "
        "'sklearn:<module.Class>' (e.g. 'sklearn:sklearn.linear_model.LogisticRegression'), "
        "found 'xgbost'; did you mean 'xgboost'?"
    ]


def test_time_split_needs_a_time_column(parse: Parse, problems: Problems) -> None:
    text = MODEL + "  split: {method: time}\n"
    assert problems(text)[1:] == [
        "  line 5: model.split.method: method 'time' needs a time column: set "
        "dataset.time_column or model.split.time_column"
    ]
    parse(text + "dataset: {time_column: t}\nsources: {a: {type: file, path: a.csv}}\n")
    parse(text.replace("{method: time}", "{method: time, time_column: t}"))


def test_dataset_query_is_needed_with_several_sources(problems: Problems) -> None:
    text = """\
    name: demo
    sources:
      a: {type: file, path: a.csv}
      b: {type: file, path: b.csv}
    dataset: {time_column: t}
    """
    assert problems(text)[1:] == [
        "  line 5: dataset.query: a query is needed to build the dataset from 2 sources"
    ]


def test_gate_metrics_must_suit_the_task(problems: Problems) -> None:
    text = MODEL + "gate:\n  min: {roc_acu: 0.7, log_loss: 0.5}\n  vs_champion: {metric: rmse}\n"
    assert problems(text)[1:] == [
        "  line 6: gate.min.log_loss: log_loss is better when lower; put it under max:",
        "  line 6: gate.min.roc_acu: unknown metric 'roc_acu' for task binary_classification; "
        "expected one of 'roc_auc', 'pr_auc', 'accuracy', 'balanced_accuracy', 'f1', "
        "'precision', 'recall', 'log_loss', 'brier', 'ece'; did you mean 'roc_auc'?",
        "  line 7: gate.vs_champion.metric: unknown metric 'rmse' for task binary_classification; "
        "expected one of 'roc_auc', 'pr_auc', 'accuracy', 'balanced_accuracy', 'f1', "
        "'precision', 'recall', 'log_loss', 'brier', 'ece'",
    ]


def test_monitor_quality_metric_must_suit_the_task(problems: Problems) -> None:
    text = MODEL + "monitor: {quality: {metric: r2}}\n"
    assert problems(text)[1].startswith(
        "  line 5: monitor.quality.metric: unknown metric 'r2' for task binary_classification"
    )


@pytest.mark.parametrize("schedule", ["0 3 * * 1", "*/15 * * * *", "@daily"])
def test_valid_cron(parse: Parse, schedule: str) -> None:
    retrain = parse(
        f"name: d\nmonitor: {{retrain: {{schedule: '{schedule}'}}}}\n"
    ).spec.monitor.retrain
    assert retrain is not None and retrain.schedule == schedule


@pytest.mark.parametrize("schedule", ["0 3 * *", "61 * * * *", "0 0 3 * * 1", "weekly"])
def test_invalid_cron(problems: Problems, schedule: str) -> None:
    lines = problems(f"name: d\nmonitor: {{retrain: {{schedule: '{schedule}'}}}}\n")
    assert lines[1].startswith("  line 2: monitor.retrain.schedule: expected a cron expression")
    assert lines[1].endswith(f"found {schedule!r}")


def test_retrain_needs_a_trigger(problems: Problems) -> None:
    assert problems("name: d\nmonitor:\n  retrain: {cooldown: 1h}\n")[1:] == [
        "  line 3: monitor.retrain: retrain needs a schedule (cron) or events under 'on', or both"
    ]


def test_drift_thresholds_keep_defaults_for_methods_left_out(parse: Parse) -> None:
    drift = parse("name: d\nmonitor: {drift: {thresholds: {psi: 0.3}}}\n").spec.monitor.drift
    assert drift.thresholds[DriftMethod.psi] == 0.3
    assert drift.thresholds[DriftMethod.jensen_shannon] == 0.1


def test_schema_column_checks(problems: Problems) -> None:
    text = """\
    name: demo
    schema:
      columns:
        code: {type: str, min: 1, allowed: [AA, 01, 2.5], pattern: "[a-"}
    """
    assert problems(text)[1:] == [
        "  line 4: schema.columns.code.allowed[1]: expected a string in a str column, found 1 "
        "(YAML read it as a int); put it in quotes",
        "  line 4: schema.columns.code.allowed[2]: expected a string in a str column, found 2.5 "
        "(YAML read it as a float); put it in quotes",
        "  line 4: schema.columns.code.min: 'min' applies to int and float columns, not str",
        "  line 4: schema.columns.code.pattern: invalid regular expression: unterminated "
        "character set at position 0",
    ]


def test_http_source(parse: Parse, problems: Problems) -> None:
    text = """\
    name: demo
    sources:
      carriers:
        type: http
        url: https://api.example.test/carriers
        pagination: {type: next_link, field: next}
        headers: {Authorization: "Bearer ${TOKEN}"}
    """
    source = parse(text, {"TOKEN": "t0k"}).spec.sources["carriers"]
    assert isinstance(source, HttpSource)
    assert source.headers == {"Authorization": "Bearer t0k"}
    assert source.pagination == NextLinkPagination(type="next_link", field="next")
    assert problems(text.replace("https://", "ftp://"), {"TOKEN": "t"})[1:] == [
        "  line 5: sources.carriers.url: expected an http:// or https:// URL, found "
        "'ftp://api.example.test/carriers'"
    ]


def test_feature_views_need_the_dataset_time(parse: Parse, problems: Problems) -> None:
    text = """\
    name: demo
    sources: {flights: {type: file, path: f.csv}}
    dataset: {}
    features:
      views:
        origin_stats:
          query: select origin, time_hour, avg(dep_delay) as mean_delay from flights group by all
          entities: [origin]
          timestamp: time_hour
          ttl: 1d
    """
    assert problems(text)[1:] == [
        "  line 5: features.views: feature views are joined point-in-time on the dataset's "
        "time; set dataset.time_column"
    ]
    features = parse(text.replace("dataset: {}", "dataset: {time_column: time_hour}")).spec.features
    assert features is not None
    assert features.views["origin_stats"].ttl == timedelta(days=1)
    assert features.online_store == SqliteOnlineStore(type="sqlite")
