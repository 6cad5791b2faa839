"""Reading the training frame: which columns are features, and errors for bad targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.errors import TrainingError
from conveyor.spec._model import ModelSpec
from conveyor.train._dataset import load_training_frame


def spec(**fields: Any) -> ModelSpec:
    return ModelSpec.model_validate({"task": "binary_classification", "target": "late", **fields})


@pytest.fixture
def parquet(tmp_path: Path) -> Path:
    frame = pd.DataFrame(
        {
            "zone": ["a", "b", None, "a"],
            "amount": [1.5, None, 3.0, 4.0],
            "count": pd.array([1, 2, None, 4], dtype="Int64"),
            "member": [True, False, True, False],
            "at": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]),
            "booked": pd.to_datetime(["2023-12-01"] * 4, utc=True),
            "late": [True, False, True, False],
            "label": ["x", "y", "z", "x"],
            "score": [0.1, 0.2, None, 0.4],
        }
    )
    path = tmp_path / "data.parquet"
    frame.to_parquet(path, index=False)
    return path


def test_default_features_are_sorted_and_skip_target_time_and_datetimes(parquet: Path) -> None:
    frame = load_training_frame(parquet, spec(features={"exclude": ["label"]}), time_column="at")
    assert dict(frame.feature_schema) == {
        "amount": "numeric",
        "count": "numeric",
        "member": "boolean",
        "score": "numeric",
        "zone": "categorical",
    }
    assert list(frame.X.columns) == list(frame.feature_schema)
    np.testing.assert_array_equal(frame.y, [True, False, True, False])
    assert frame.classes == (False, True)
    assert frame.time is not None
    assert frame.time[0] == np.datetime64("2024-01-01")


def test_included_features_keep_their_order_and_may_be_datetimes(parquet: Path) -> None:
    frame = load_training_frame(
        parquet, spec(features={"include": ["zone", "booked", "amount"]}), time_column=None
    )
    assert dict(frame.feature_schema) == {
        "zone": "categorical",
        "booked": "datetime",
        "amount": "numeric",
    }
    assert list(frame.X.columns) == ["zone", "booked", "amount"]
    assert frame.time is None


def test_split_time_column_wins_over_the_dataset_one(parquet: Path) -> None:
    model = spec(split={"method": "time", "time_column": "booked"})
    frame = load_training_frame(parquet, model, time_column="at")
    assert "at" not in frame.X.columns  # a datetime, not included
    assert frame.time is not None and str(frame.time[0]).startswith("2023-12-01")


def test_group_values_are_read(parquet: Path) -> None:
    model = spec(split={"method": "group", "group_column": "zone"})
    frame = load_training_frame(parquet, model, time_column=None)
    assert frame.groups is not None and list(frame.groups[:2]) == ["a", "b"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"target": "lat"}, "target column 'lat' .* did you mean 'late'"),
        ({"features": {"include": ["zone", "amout"]}}, "feature column 'amout'.*'amount'"),
        ({"split": {"method": "time", "time_column": "when"}}, "time column 'when'"),
        ({"target": "score", "task": "regression"}, "'score' is missing in 1 of 4 rows"),
        ({"target": "zone", "task": "regression"}, "is missing in 1 of 4 rows"),
        ({"target": "label", "task": "regression"}, "regression but target 'label' is not numeric"),
        ({"target": "late", "task": "regression"}, "not numeric"),
        ({"target": "label"}, "binary_classification but target 'label' has 3 classes"),
    ],
)
def test_bad_targets_and_columns_are_explained(
    parquet: Path, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(TrainingError, match=message):
        load_training_frame(parquet, spec(**fields), time_column=None)


def test_single_class_target_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "one.parquet"
    pd.DataFrame({"late": [True] * 3, "x": [1, 2, 3]}).to_parquet(path)
    with pytest.raises(TrainingError, match=r"single class \(True\) in all 3 rows"):
        load_training_frame(path, spec(), time_column=None)


def test_no_features_left_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "bare.parquet"
    pd.DataFrame({"late": [True, False], "x": [1, 2]}).to_parquet(path)
    with pytest.raises(TrainingError, match="no feature columns are left"):
        load_training_frame(path, spec(features={"exclude": ["x"]}), time_column=None)
