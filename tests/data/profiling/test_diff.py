"""Diffs of real data: January vs July flights, changed columns, exact drift numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import numpy as np
import pytest

from conveyor.data.profiling import DatasetDiff, diff_parquet, diff_relations, profile_relation
from conveyor.errors import SourceError


def by_name(diff: DatasetDiff) -> dict[str, object]:
    return {c.name: c for c in diff.column_changes}


@pytest.fixture
def months(flights_con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    flights_con.execute("CREATE VIEW jan AS SELECT * FROM flights WHERE month = 1")
    flights_con.execute("CREATE VIEW jul AS SELECT * FROM flights WHERE month = 7")
    return flights_con


def test_january_vs_july(months: duckdb.DuckDBPyConnection) -> None:
    diff = diff_relations(months, "jan", "jul")
    assert diff.rows == (27_004, 29_425)
    assert (diff.added_columns, diff.removed_columns, diff.type_changes) == ([], [], [])
    changes = {c.name: c for c in diff.column_changes}
    assert len(changes) == 19
    month = changes["month"]
    assert (month.min, month.max, month.mean) == ((1, 7), (1, 7), (1.0, 7.0))
    assert month.drift_method == "psi" and month.severity == "major" and month.drift > 5
    assert changes["year"].drift == 0.0
    delay = changes["dep_delay"]
    assert delay.mean[0] == pytest.approx(10.04, abs=0.01)  # summer is worse
    assert delay.mean[1] == pytest.approx(21.73, abs=0.01)
    assert delay.null_fraction[1] > delay.null_fraction[0]
    for name in ("origin", "carrier", "dest"):  # the same airports and airlines fly all year
        assert changes[name].drift_method == "top_shares"
        assert changes[name].drift is not None and changes[name].drift < 0.1
    assert changes["time_hour"].drift is None  # time moves by nature
    assert changes["time_hour"].min[1] > changes["time_hour"].max[0]
    lines = diff.summary_lines()
    assert lines[0] == "rows: 27,004 → 29,425 (+9.0%)"
    assert any(line.startswith("month: PSI ") and "(major); mean 1 → 7" in line for line in lines)
    assert any(line.startswith("dep_delay: ") and "nulls 1.9% → 3.2%" in line for line in lines)
    assert lines[-1].endswith("other common columns: no notable change")
    data = json.loads(json.dumps(diff.to_json(), allow_nan=False))
    assert data["rows"] == [27_004, 29_425]
    assert data["column_changes"][1]["name"] == "month"


def test_a_table_does_not_drift_from_itself(months: duckdb.DuckDBPyConnection) -> None:
    diff = diff_relations(months, "jan", "jan")
    drifts = {c.name: c.drift for c in diff.column_changes}
    assert drifts.pop("time_hour") is None
    assert set(drifts.values()) == {0.0}
    assert diff.summary_lines() == [
        "rows: 27,004 → 27,004 (+0.0%)",
        "19 common columns: no notable change",
    ]


def test_top_value_shift_is_the_total_variation_of_shares(
    months: duckdb.DuckDBPyConnection,
) -> None:
    months.execute("CREATE VIEW jfk AS SELECT * FROM flights WHERE origin = 'JFK'")
    origin = next(
        c for c in diff_relations(months, "flights", "jfk").column_changes if c.name == "origin"
    )
    ewr, jfk, lga = 120_835, 111_279, 104_662
    total = ewr + jfk + lga
    expected = (ewr / total + (1 - jfk / total) + lga / total) / 2
    assert origin.drift == pytest.approx(expected, rel=1e-12)
    assert origin.severity == "major" and origin.distinct == (3, 1)


def test_psi_matches_a_hand_computation() -> None:
    with duckdb.connect() as con:
        con.execute("CREATE TABLE a AS SELECT i::DOUBLE AS x FROM range(1000) r(i)")
        con.execute("CREATE TABLE b AS SELECT (i * 0.7 + 300)::DOUBLE AS x FROM range(1200) r(i)")
        edges = profile_relation(con, "a").column("x").quantiles
        assert edges is not None
        drift = diff_relations(con, "a", "b").column_changes[0].drift
    a = np.arange(1000.0)
    b = np.arange(1200) * 0.7 + 300
    share_a = np.bincount(np.searchsorted(edges, a, side="left"), minlength=10) / a.size
    share_b = np.bincount(np.searchsorted(edges, b, side="left"), minlength=10) / b.size
    share_a, share_b = np.maximum(share_a, 1e-4), np.maximum(share_b, 1e-4)
    expected = float(np.sum((share_b - share_a) * np.log(share_b / share_a)))
    assert drift == pytest.approx(expected, rel=1e-9)
    assert math.isfinite(expected) and expected > 0.25


def test_added_removed_and_retyped_columns(
    tmp_path: Path, months: duckdb.DuckDBPyConnection
) -> None:
    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    months.execute(f"COPY (SELECT * FROM jan) TO '{first}' (FORMAT parquet)")
    months.execute(
        f"""COPY (SELECT * EXCLUDE (tailnum, dep_delay), CAST(dep_delay AS VARCHAR) AS dep_delay,
                    distance * 1.609 AS distance_km FROM jan) TO '{second}' (FORMAT parquet)"""
    )
    diff = diff_parquet(first, second)
    assert diff.rows == (27_004, 27_004)
    assert diff.added_columns == ["distance_km"]
    assert diff.removed_columns == ["tailnum"]
    assert diff.type_changes == [("dep_delay", "BIGINT", "VARCHAR")]
    delay = next(c for c in diff.column_changes if c.name == "dep_delay")
    assert delay.drift is None and delay.mean[1] is None
    assert delay.null_fraction[0] == delay.null_fraction[1]
    assert [c.name for c in diff.column_changes if c.drift not in (0.0, None)] == []
    assert diff.summary_lines() == [
        "rows: 27,004 → 27,004 (+0.0%)",
        "added columns: distance_km",
        "removed columns: tailnum",
        "type of dep_delay: BIGINT → VARCHAR",
        "17 other common columns: no notable change",  # 18 common, one retyped
    ]


def test_missing_file_is_a_source_error(tmp_path: Path, flights_parquet: Path) -> None:
    with pytest.raises(SourceError, match=r"cannot compare .*nope\.parquet: no such file"):
        diff_parquet(flights_parquet, tmp_path / "nope.parquet")
