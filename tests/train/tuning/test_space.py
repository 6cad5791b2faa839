"""Search spaces become Optuna distributions; bad spaces fail before any trial runs."""

from __future__ import annotations

from collections.abc import Callable

import optuna
import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from conveyor.errors import TrainingError
from conveyor.spec import ModelSpec, TuneSpec
from conveyor.train.tuning import check_space, suggest

MakeSpec = Callable[..., ModelSpec]


def test_every_param_type_becomes_its_distribution() -> None:
    tune = TuneSpec.model_validate(
        {
            "space": {
                "lr": {"type": "float", "low": 0.001, "high": 0.3, "log": True},
                "frac": {"type": "float", "low": 0.5, "high": 1.0, "step": 0.1},
                "plain": {"type": "float", "low": -1, "high": 1},
                "leaves": {"type": "int", "low": 8, "high": 256, "log": True},
                "depth": {"type": "int", "low": 2, "high": 10, "step": 2},
                "boosting": {"type": "categorical", "choices": ["gbdt", "dart", 3, True]},
            }
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = suggest(trial, tune.space)
    assert trial.distributions == {
        "lr": FloatDistribution(0.001, 0.3, log=True),
        "frac": FloatDistribution(0.5, 1.0, step=0.1),
        "plain": FloatDistribution(-1, 1),
        "leaves": IntDistribution(8, 256, log=True),
        "depth": IntDistribution(2, 10, step=2),
        "boosting": CategoricalDistribution(["gbdt", "dart", 3, True]),
    }
    assert params == trial.params
    assert params["depth"] in {2, 4, 6, 8, 10}
    assert 8 <= params["leaves"] <= 256 and isinstance(params["leaves"], int)


def test_unknown_lightgbm_param_is_named_with_a_suggestion(make_spec: MakeSpec) -> None:
    spec = make_spec(tune={"space": {"nm_leaves": {"type": "int", "low": 4, "high": 64}}})
    with pytest.raises(TrainingError, match=r"no parameter 'nm_leaves'; did you mean 'num_leaves'"):
        check_space(spec)


def test_lightgbm_aliases_and_sklearn_params_are_accepted(make_spec: MakeSpec) -> None:
    check_space(make_spec(tune={"space": {"eta": {"type": "float", "low": 0.1, "high": 0.2}}}))
    spec = make_spec(
        algorithm="sklearn:sklearn.linear_model.LogisticRegression",
        params={},
        tune={"space": {"C": {"type": "float", "low": 0.1, "high": 10, "log": True}}},
    )
    check_space(spec)
    bad = make_spec(
        algorithm="sklearn:sklearn.linear_model.LogisticRegression",
        params={},
        tune={"space": {"c": {"type": "float", "low": 0.1, "high": 10}}},
    )
    with pytest.raises(TrainingError, match=r"has no parameter 'c'; did you mean 'C'"):
        check_space(bad)


def test_a_spec_without_tune_cannot_be_tuned(make_spec: MakeSpec) -> None:
    spec = make_spec().model_copy(update={"tune": None})
    with pytest.raises(TrainingError, match=r"model\.tune is not set"):
        check_space(spec)
