"""Tuning folds follow the split method and never touch the test part."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conveyor.errors import TrainingError
from conveyor.spec import ModelSpec
from conveyor.train._dataset import TrainingFrame, load_training_frame
from conveyor.train._split import split
from conveyor.train.tuning._folds import Fold, tuning_folds

MakeSpec = Callable[..., ModelSpec]


def _folds(path: Path, spec: ModelSpec, k: int) -> tuple[list[Fold], Any, TrainingFrame]:
    frame = load_training_frame(path, spec, time_column="time_hour")
    parts = split(frame, spec.split, task=spec.task)
    return tuning_folds(frame, parts, spec, k), parts.test, frame


@pytest.mark.parametrize("method", ["time", "random", "group"])
def test_folds_match_the_split_method(
    flights_parquet: Path, make_spec: MakeSpec, method: str
) -> None:
    split_spec: dict[str, object] = {"method": method}
    if method == "group":
        split_spec["group_column"] = "carrier"
    spec = make_spec(target="delayed", features={"exclude": ["arr_delay"]}, split=split_spec)
    folds, test, frame = _folds(flights_parquet, spec, 3)
    assert len(folds) == 3
    for train, valid in folds:
        assert not set(train) & set(valid)
        assert not (set(train) | set(valid)) & set(test)
        if method == "time":
            assert frame.time[train].max() <= frame.time[valid].min()
        if method == "group":
            groups = frame.groups
            assert not set(groups[train]) & set(groups[valid])
        if method == "random":  # stratified: each fold keeps the share of delayed flights
            y = frame.y
            assert abs(y[valid].mean() - y[train].mean()) < 0.02
    if method != "time":  # k-fold: every train/validation row is validated exactly once
        validated = np.concatenate([valid for _, valid in folds])
        assert len(validated) == len(set(validated)) == len(frame.y) - len(test)


def test_one_fold_is_the_splits_own_parts(flights_parquet: Path, make_spec: MakeSpec) -> None:
    spec = make_spec(target="delayed", features={"exclude": ["arr_delay"]})
    frame = load_training_frame(flights_parquet, spec, time_column="time_hour")
    parts = split(frame, spec.split, task=spec.task)
    [(train, valid)] = tuning_folds(frame, parts, spec, 1)
    assert (train == parts.train).all() and (valid == parts.validation).all()


def test_too_many_folds_for_the_groups_is_a_training_error(
    flights_parquet: Path, make_spec: MakeSpec
) -> None:
    spec = make_spec(
        target="delayed",
        features={"exclude": ["arr_delay"]},
        split={"method": "group", "group_column": "origin"},
    )
    with pytest.raises(TrainingError, match=r"cannot make 20 tuning folds .*lower model\.tune"):
        _folds(flights_parquet, spec, 20)
