"""Splits: disjoint parts covering every row, with each method's own guarantee."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.errors import TrainingError
from conveyor.spec._metrics import Task
from conveyor.spec._model import SplitSpec
from conveyor.train._dataset import TrainingFrame
from conveyor.train._split import Split, split


def make_frame(n: int, **fields: Any) -> TrainingFrame:
    X = pd.DataFrame({"x": np.arange(n, dtype=float)})
    fields.setdefault("y", np.arange(n, dtype=float))
    return TrainingFrame(X=X, feature_schema={"x": "numeric"}, **fields)


def assert_partition(parts: Split, n: int) -> None:
    together = np.concatenate([parts.train, parts.validation, parts.test])
    assert len(together) == n
    np.testing.assert_array_equal(np.sort(together), np.arange(n))  # disjoint and complete
    for part in (parts.train, parts.validation, parts.test):
        assert part.dtype == np.int64
        assert (np.diff(part) > 0).all()  # sorted


def test_random_split_sizes_and_seed() -> None:
    spec = SplitSpec(test_fraction=0.2, validation_fraction=0.25, seed=3)
    parts = split(make_frame(1000), spec, task=Task.regression)
    assert_partition(parts, 1000)
    assert (len(parts.train), len(parts.validation), len(parts.test)) == (600, 200, 200)
    again = split(make_frame(1000), spec, task=Task.regression)
    np.testing.assert_array_equal(parts.test, again.test)
    np.testing.assert_array_equal(parts.validation, again.validation)
    other = split(make_frame(1000), spec.model_copy(update={"seed": 4}), task=Task.regression)
    assert not np.array_equal(parts.test, other.test)
    assert parts.test.max() > 800  # shuffled, not the last rows


def test_random_split_of_classes_is_stratified() -> None:
    y = np.array(["rare"] * 50 + ["common"] * 950, dtype=object)
    parts = split(make_frame(1000, y=y), SplitSpec(seed=1), task=Task.binary_classification)
    assert_partition(parts, 1000)
    for part, expected in ((parts.test, 10), (parts.validation, 8), (parts.train, 32)):
        assert (y[part] == "rare").sum() == expected
    assert (len(parts.train), len(parts.validation), len(parts.test)) == (640, 160, 200)


def test_time_split_tests_on_the_latest_rows() -> None:
    rng = np.random.default_rng(0)
    time = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 50, 500), "D")
    frame = make_frame(500, time=time.to_numpy())
    parts = split(frame, SplitSpec(method="time"), task=Task.binary_classification)
    assert_partition(parts, 500)
    assert (len(parts.train), len(parts.validation), len(parts.test)) == (320, 80, 100)
    t = frame.time
    assert t is not None
    assert t[parts.train].max() <= t[parts.validation].min()
    assert t[parts.validation].max() <= t[parts.test].min()


def test_time_split_breaks_ties_by_row_order() -> None:
    frame = make_frame(10, time=np.full(10, np.datetime64("2024-01-01")))
    parts = split(frame, SplitSpec(method="time"), task=Task.regression)
    np.testing.assert_array_equal(parts.test, [8, 9])
    np.testing.assert_array_equal(parts.validation, [6, 7])


def test_group_split_keeps_groups_whole() -> None:
    rng = np.random.default_rng(0)
    groups = rng.choice([f"user{i}" for i in range(60)], size=2000)
    frame = make_frame(2000, groups=groups)
    spec = SplitSpec(method="group", group_column="user", seed=5)
    parts = split(frame, spec, task=Task.regression)
    assert_partition(parts, 2000)
    seen = [set(groups[part]) for part in (parts.train, parts.validation, parts.test)]
    assert not seen[0] & seen[1] and not seen[0] & seen[2] and not seen[1] & seen[2]
    assert abs(len(parts.test) - 400) < 60 and abs(len(parts.validation) - 320) < 60
    again = split(frame, spec, task=Task.regression)
    np.testing.assert_array_equal(parts.test, again.test)


@pytest.mark.parametrize(
    ("frame", "spec", "message"),
    [
        (make_frame(50), SplitSpec(method="time"), "needs a time column: set model.split"),
        (
            make_frame(4, time=np.array(["2024-01-01", "NaT", "NaT", "2024-01-02"], "M8[s]")),
            SplitSpec(method="time"),
            "2 missing values",
        ),
        (make_frame(3), SplitSpec(), "3 rows are too few .* every part needs at least one"),
        (
            make_frame(20, groups=np.array(["a", "b"] * 10, dtype=object)),
            SplitSpec(method="group", group_column="g"),
            "'g' has 2 distinct values; a group split needs at least 3",
        ),
        (
            make_frame(20, groups=np.array(["a", None] * 10, dtype=object)),
            SplitSpec(method="group", group_column="g"),
            "'g' has 10 missing values",
        ),
    ],
)
def test_bad_splits_are_explained(frame: TrainingFrame, spec: SplitSpec, message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        split(frame, spec, task=Task.regression)


def test_stratified_split_needs_two_rows_per_class() -> None:
    y = np.array(["a"] * 30 + ["b"], dtype=object)
    with pytest.raises(TrainingError, match=r"class 'b' \(1 row\) has fewer"):
        split(make_frame(31, y=y), SplitSpec(), task=Task.multiclass_classification)
