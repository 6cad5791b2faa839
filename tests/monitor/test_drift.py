"""compute_drift as a user calls it: verdicts, thresholds, weights, sampling, inputs, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conveyor.errors import SourceError
from conveyor.monitor import LOG_COLUMNS, DriftReport, compute_drift
from conveyor.spec import DriftSpec


def frames(n: int = 20_000, m: int = 10_000, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """Reference and current tables: ``shifted`` and ``colour`` drift, the rest do not."""
    rng = np.random.default_rng(seed)
    colours = np.array(["red", "green", "blue"])
    ref = pa.table(
        {
            "stable": rng.normal(10, 2, n),
            "shifted": rng.normal(0, 1, n),
            "count": rng.poisson(4, n),
            "colour": colours[rng.choice(3, n, p=[0.5, 0.3, 0.2])],
            "flag": rng.random(n) < 0.3,
        }
    )
    cur = pa.table(
        {
            "stable": rng.normal(10, 2, m),
            "shifted": rng.normal(0.8, 1, m),
            "count": rng.poisson(4, m),
            "colour": colours[rng.choice(3, m, p=[0.2, 0.3, 0.5])],
            "flag": rng.random(m) < 0.3,
        }
    )
    return ref, cur


def test_a_shifted_column_is_flagged_and_a_stable_one_is_not() -> None:
    ref, cur = frames()

    report = compute_drift(ref, cur)

    assert [c.name for c in report.columns] == ["stable", "shifted", "count", "colour", "flag"]
    kinds = {c.name: c.kind for c in report.columns}
    assert kinds == {
        "stable": "numeric",
        "shifted": "numeric",
        "count": "numeric",
        "colour": "categorical",
        "flag": "categorical",
    }
    assert report.drifted_columns == ("shifted", "colour")
    assert report.drifted_share == pytest.approx(2 / 5)
    assert report.drifted  # 0.4 >= the default 0.3
    shifted, stable = report.column("shifted"), report.column("stable")
    assert (shifted.method, shifted.threshold) == ("psi", 0.2)
    assert shifted.value is not None and shifted.value > 0.4
    assert stable.value is not None and stable.value < 0.01
    assert stable.statistics["ks_pvalue"] > 0.001


def test_no_drift_between_two_samples_of_one_distribution() -> None:
    ref, _ = frames(seed=1)
    cur, _ = frames(seed=2)

    report = compute_drift(ref, cur)

    assert report.drifted_columns == ()
    assert not report.drifted
    assert report.drifted_share == 0.0


@pytest.mark.parametrize(
    ("numeric", "expected"),
    [("ks", "ks"), ("wasserstein", "wasserstein"), ("jensen_shannon", "jensen_shannon")],
)
def test_the_spec_method_decides(numeric: str, expected: str) -> None:
    ref, cur = frames()
    spec = DriftSpec(methods={"numeric": numeric, "categorical": "chi_square"})

    report = compute_drift(ref, cur, spec=spec)

    shifted = report.column("shifted")
    assert shifted.method == numeric
    assert shifted.value == shifted.statistics[expected]
    colour = report.column("colour")
    assert colour.method == "chi_square"
    assert colour.value == colour.statistics["cramers_v"]
    assert report.drifted_columns == ("shifted", "colour")


def test_per_column_thresholds_override_the_method_threshold() -> None:
    ref, cur = frames()
    spec = DriftSpec(
        thresholds={"psi": 0.05}, column_thresholds={"shifted": {"psi": 5.0, "ks": 0.01}}
    )

    report = compute_drift(ref, cur, spec=spec)

    assert report.column("shifted").threshold == 5.0
    assert not report.column("shifted").drifted
    assert report.column("stable").threshold == 0.05


def test_importance_weights_the_dataset_verdict() -> None:
    ref, cur = frames()
    spec = DriftSpec(dataset_share=0.5)

    light = compute_drift(ref, cur, spec=spec, importance={"shifted": 0.1, "stable": 5.0})
    heavy = compute_drift(ref, cur, spec=spec, importance={"shifted": 5.0, "stable": 0.1})

    # columns the importance leaves out (count, colour, flag) weigh the mean of the given ones
    assert light.column("colour").weight == pytest.approx(2.55)
    assert light.drifted_share == pytest.approx((0.1 + 2.55) / (0.1 + 5.0 + 3 * 2.55))
    assert not light.drifted
    assert heavy.drifted_share == pytest.approx((5.0 + 2.55) / (0.1 + 5.0 + 3 * 2.55))
    assert heavy.drifted
    with pytest.raises(ValueError, match="finite and >= 0"):
        compute_drift(ref, cur, importance={"shifted": -1.0})
    with pytest.raises(ValueError, match="no compared column a weight above 0"):
        compute_drift(ref, cur, importance={"shifted": 0.0, "elsewhere": 3.0})


def test_sampling_is_reproducible_and_seeded() -> None:
    ref, cur = frames(n=30_000, m=30_000)
    spec = DriftSpec(max_rows=5_000)

    first = compute_drift(ref, cur, spec=spec)
    again = compute_drift(ref, cur, spec=spec)
    other = compute_drift(ref, cur, spec=spec, seed=1)

    assert (first.reference_rows, first.current_rows) == (5_000, 5_000)
    assert (first.reference_total_rows, first.current_total_rows) == (30_000, 30_000)
    assert first.column("colour").reference_rows == 5_000
    strip = {**first.to_json(), "created_at": None}
    assert {**again.to_json(), "created_at": None} == strip
    assert {**other.to_json(), "created_at": None} != strip
    assert other.seed == 1
    assert first.drifted_columns == other.drifted_columns == ("shifted", "colour")


def test_sampling_draws_the_same_rows_for_every_column(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 50_000
    values = np.arange(n, dtype=np.float64)
    table = pa.table({"a": values, "b": values * 2, "c": (values % 7).astype(str)})
    wide = table.append_column("d", pa.array(values + 0.5))
    # one numeric column per group: each group is a separate scan of the input
    monkeypatch.setattr("conveyor.monitor._drift.GROUP_BYTES", 4 * 1000)

    report = compute_drift(wide, wide, max_rows=1000, seed=3, workers=1)

    a, b, d = (report.column(x).statistics for x in "abd")
    assert a["reference_std"] * 2 == pytest.approx(b["reference_std"])
    assert a["reference_std"] == pytest.approx(d["reference_std"])


def test_a_prediction_log_is_read_from_partitioned_parquet_with_the_in_prefix(
    tmp_path: Path,
) -> None:
    ref, cur = frames(n=4_000, m=3_000)
    log = tmp_path / "predictions"
    proba = np.random.default_rng(0).random(3_000)
    for version, rows in ((1, slice(0, 1_500)), (2, slice(1_500, 3_000))):
        part = cur.slice(rows.start, rows.stop - rows.start)
        folder = log / "date=2026-01-02" / f"model_version={version}"
        folder.mkdir(parents=True)
        columns = {f"in_{name}": part[name] for name in part.column_names}
        columns["request_id"] = pa.array([f"r{i}" for i in range(part.num_rows)])
        columns["latency_ms"] = pa.array(np.ones(part.num_rows))
        columns["out_prediction"] = pa.array(proba[rows] > 0.5)
        columns["out_proba"] = pa.FixedSizeListArray.from_arrays(
            pa.array(np.column_stack([1 - proba[rows], proba[rows]]).ravel()), 2
        )
        pq.write_table(pa.table(columns), folder / "part-0.parquet")
    reference_log = tmp_path / "reference.parquet"
    reference = ref.append_column("out_prediction", pa.array(np.zeros(4_000, dtype=bool)))
    reference = reference.append_column(
        "out_proba",
        pa.FixedSizeListArray.from_arrays(pa.array(np.tile([0.9, 0.1], 4_000)), 2),
    )
    pq.write_table(reference, reference_log)

    report = compute_drift(str(reference_log), log, current_prefix="in_")

    names = [c.name for c in report.columns]
    assert names == [
        "stable",
        "shifted",
        "count",
        "colour",
        "flag",
        "out_prediction",
        "out_proba[2]",
    ]
    assert report.column("shifted").current_name == "in_shifted"
    assert report.column("out_prediction").current_name is None
    assert report.column("out_prediction").kind == "categorical"
    assert report.current_total_rows == 3_000
    assert {"shifted", "colour", "out_prediction", "out_proba[2]"} <= set(report.drifted_columns)
    assert "stable" not in report.drifted_columns

    # a glob of the files, and a list of paths, read the same rows
    files = sorted(str(p) for p in log.rglob("*.parquet"))
    by_list = compute_drift(str(reference_log), files, current_prefix="in_")
    by_glob = compute_drift(str(reference_log), str(log / "**" / "*.parquet"), current_prefix="in_")
    assert by_list.column("shifted").value == by_glob.column("shifted").value
    assert by_list.column("shifted").value == report.column("shifted").value


def test_log_metadata_and_uncomparable_types_are_skipped_with_a_reason() -> None:
    n = 100
    table = pa.table(
        {
            "x": np.arange(n, dtype=np.float64),
            "timestamp": pa.array(np.arange(n), pa.timestamp("us")),
            "when": pa.array(np.arange(n), pa.timestamp("us")),
            "request_id": [str(i) for i in range(n)],
        }
    )

    report = compute_drift(table, table)

    assert [c.name for c in report.columns] == ["x"]
    assert set(report.skipped) == {"timestamp", "when", "request_id"}
    assert "TIMESTAMP" in report.skipped["when"]
    assert {"request_id", "timestamp"} <= LOG_COLUMNS


def test_named_columns_must_exist_and_kinds_can_be_given() -> None:
    ref, cur = frames(n=2_000, m=2_000)

    report = compute_drift(ref, cur, columns={"count": "categorical", "stable": "numeric"})
    assert [(c.name, c.kind) for c in report.columns] == [
        ("count", "categorical"),
        ("stable", "numeric"),
    ]
    with pytest.raises(SourceError, match="no column 'shifed'; did you mean 'shifted'"):
        compute_drift(ref, cur, columns=["shifed"])
    with pytest.raises(SourceError, match="current data has no column 'in_stable' or 'stable'"):
        compute_drift(ref, cur.drop_columns(["stable"]), columns=["stable"], current_prefix="in_")
    renamed = cur.rename_columns(["s", *cur.column_names[1:]])
    assert compute_drift(ref, renamed, columns=["stable"], rename={"stable": "s"}).columns


def test_unreadable_or_empty_inputs_raise_source_errors(tmp_path: Path) -> None:
    ref, cur = frames(n=100, m=100)
    with pytest.raises(SourceError, match=r"cannot read the current data .*nothing-here"):
        compute_drift(ref, str(tmp_path / "nothing-here" / "*.parquet"))
    with pytest.raises(SourceError, match=r"the current data .* has no rows"):
        compute_drift(ref, cur.slice(0, 0))
    with pytest.raises(SourceError, match="share no column to compare"):
        compute_drift(ref, pa.table({"other": [1, 2]}))


def test_json_round_trips_and_is_standard_json() -> None:
    ref, cur = frames(n=2_000, m=1_000)
    cur = cur.set_column(0, "stable", pa.array([None] * 1_000, pa.float64()))

    report = compute_drift(ref, cur)
    text = json.dumps(report.to_json(), allow_nan=False)

    assert DriftReport.from_json(json.loads(text)) == report
    data = json.loads(text)
    assert data["columns"][0]["value"] is not None  # PSI exists even for an empty column
    assert data["columns"][0]["statistics"]["ks"] is None
    assert data["drifted_columns"] == list(report.drifted_columns)
