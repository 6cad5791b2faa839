"""``model.tune`` fields added for tuning: ``cv_folds``, and step/log checks of float ranges."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor.spec import LoadedSpec, TuneSpec

Parse = Callable[..., LoadedSpec]
Problems = Callable[..., list[str]]

MODEL = """\
name: demo
model:
  task: binary_classification
  target: delayed
  tune:
    space: {lr: {type: float, low: 0.01, high: 0.3}}
"""


def test_cv_folds_defaults_to_the_validation_part(parse: Parse) -> None:
    model = parse(MODEL).spec.model
    assert model is not None and model.tune is not None
    assert model.tune.cv_folds == 1


def test_cv_folds_is_read(parse: Parse) -> None:
    model = parse(MODEL + "    cv_folds: 5\n").spec.model
    assert model is not None and model.tune is not None
    assert model.tune.cv_folds == 5


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "expected a number of at least 1, found 0"),
        ("21", "expected a number of at most 20, found 21"),
        ("2.5", "whole number"),
    ],
)
def test_cv_folds_must_be_between_1_and_20(problems: Problems, value: str, problem: str) -> None:
    lines = problems(MODEL + f"    cv_folds: {value}\n")
    assert any("model.tune.cv_folds" in line and problem in line for line in lines), lines


def test_a_log_float_range_takes_no_step(problems: Problems) -> None:
    text = MODEL.replace("high: 0.3}", "high: 0.3, log: true, step: 1}")
    assert any("step cannot be combined with log: true" in line for line in problems(text))


def test_a_log_int_range_keeps_its_default_step() -> None:
    tune = TuneSpec.model_validate(
        {"space": {"n": {"type": "int", "low": 1, "high": 64, "log": True}}}
    )
    assert tune.space["n"].log is True  # type: ignore[union-attr]
