"""Labels ingested from real files and joined to a real prediction log (late, missing, keyed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conveyor.errors import SourceError
from conveyor.monitor import ingest_labels, joined_predictions, label_matches
from conveyor.serving._predlog import PredictionLog

START = datetime(2026, 3, 1, tzinfo=UTC)


def log_requests(
    base: Path,
    ids: list[str],
    *,
    version: int,
    start: datetime = START,
    rows: int = 1,
    shadow: bool = False,
    seed: int = 0,
) -> None:
    """Log one request of ``rows`` rows per id, a minute apart, as the server does."""
    rng = np.random.default_rng(seed)
    log = PredictionLog(str(base), worker_id=f"w{version}{int(shadow)}{seed}", flush_seconds=60)
    for i, request_id in enumerate(ids):
        p = rng.uniform(size=rows)
        log.append(
            request_id=request_id,
            timestamp=(start + timedelta(minutes=i)).timestamp(),
            model_name="m",
            model_version=version,
            inputs={"flight_id": np.array([1000 + i] * rows), "x": rng.normal(size=rows)},
            outputs={"prediction": (p > 0.5).astype(np.int64), "proba": np.c_[1 - p, p]},
            latency_ms=1.0,
            n_rows=rows,
            shadow=shadow,
        )
    assert log.close().rows_written == rows * len(ids)


def write_csv(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def labels_of(table: pa.Table) -> dict[tuple[str, int, int], float | None]:
    """(request id, row, version) -> label."""
    return {(r["request_id"], r["row"], r["model_version"]): r["label"] for r in table.to_pylist()}


def test_labels_are_stored_as_parquet_next_to_the_log(tmp_path: Path) -> None:
    base = tmp_path / "artifacts"
    source = write_csv(
        tmp_path / "l.csv", "request_id,row,label,labeled_at",
        ["a,0,true,2026-03-02T10:00:00Z", "b,,false,", "c,1,,"],
    )  # fmt: skip
    now = START + timedelta(days=2)
    batch = ingest_labels(str(base), source, task="binary_classification", now=now)

    assert (batch.rows, batch.skipped, batch.duplicates, batch.key) == (2, 1, 0, None)
    path = Path(batch.path)
    assert path.parent == base / "labels" and path.name.startswith("part-20260303T000000")
    assert path.suffix == ".parquet" and not list(path.parent.glob(".*"))  # no temp file left
    stored = pq.read_table(path).to_pylist()
    assert stored[0] == {
        "request_id": "a",
        "row": 0,
        "key_name": None,
        "key": None,
        "label": 1.0,
        "label_class": None,
        "labeled_at": datetime(2026, 3, 2, 10, tzinfo=UTC),
        "ingested_at": now,
    }
    assert stored[1]["row"] is None and stored[1]["label"] == 0.0  # every row of request b


def test_late_missing_and_duplicate_labels_join_to_the_right_predictions(tmp_path: Path) -> None:
    base = tmp_path / "artifacts"
    ids = [f"r{i}" for i in range(6)]
    log_requests(base, ids, version=1, rows=2)
    log_requests(base, ids[:3], version=2, shadow=True, seed=1)  # a shadow saw the first three

    first = write_csv(
        tmp_path / "day1.csv", "request_id,row,label",
        ["r0,0,1", "r0,1,0", "r1,,1", "r2,0,0", "r2,0,1"],  # r2 row 0 twice: the last counts
    )  # fmt: skip
    batch = ingest_labels(str(base), first, now=START + timedelta(hours=1))
    assert (batch.rows, batch.duplicates) == (4, 1)
    # Days later: r3 at last (late), and a correction of r0's row 1.
    later = write_csv(tmp_path / "day5.csv", "request_id,row,label", ["r3,0,1", "r0,1,1"])
    ingest_labels(str(base), later, now=START + timedelta(days=5))

    served = labels_of(joined_predictions(str(base)))
    assert served == {
        ("r0", 0, 1): 1.0,
        ("r0", 1, 1): 1.0,  # the later correction wins
        ("r1", 0, 1): 1.0,  # a label without a row applies to every row of the request
        ("r1", 1, 1): 1.0,
        ("r2", 0, 1): 1.0,
        ("r2", 1, 1): None,
        ("r3", 0, 1): 1.0,
        ("r3", 1, 1): None,
        ("r4", 0, 1): None,  # never labelled: missing
        ("r4", 1, 1): None,
        ("r5", 0, 1): None,
        ("r5", 1, 1): None,
    }
    with_shadow = joined_predictions(str(base), include_shadow=True)
    shadow = {k: v for k, v in labels_of(with_shadow).items() if k[2] == 2}
    assert shadow == {("r0", 0, 2): 1.0, ("r1", 0, 2): 1.0, ("r2", 0, 2): 1.0}
    only_late = joined_predictions(str(base), since=START + timedelta(minutes=3))
    assert sorted({r for r, _, _ in labels_of(only_late)}) == ["r3", "r4", "r5"]
    assert joined_predictions(str(base), versions=[2], include_shadow=True).num_rows == 3

    counts = label_matches(str(base))
    assert (counts.predictions, counts.labelled) == (15, 9)


def test_a_label_for_a_prediction_not_logged_yet_matches_once_it_is(tmp_path: Path) -> None:
    base = tmp_path / "artifacts"
    source = write_csv(tmp_path / "l.csv", "request_id,label", ["early,1", "r0,0"])
    batch = ingest_labels(str(base), source)
    assert label_matches(str(base), path=batch.path).unmatched == 2  # no log at all yet
    with pytest.raises(SourceError, match="no prediction has been logged"):
        joined_predictions(str(base))

    log_requests(base, ["r0"], version=1)
    counts = label_matches(str(base), path=batch.path)
    assert (counts.labels, counts.matched, counts.unmatched) == (2, 1, 1)

    log_requests(base, ["early"], version=1, start=START + timedelta(days=1), seed=3)
    assert labels_of(joined_predictions(str(base))) == {("r0", 0, 1): 0.0, ("early", 0, 1): 1.0}
    assert label_matches(str(base), path=batch.path).unmatched == 0


def test_labels_join_by_a_declared_key(tmp_path: Path) -> None:
    base = tmp_path / "artifacts"
    log_requests(base, ["a", "b", "c"], version=1)  # flight ids 1000, 1001, 1002
    pq.write_table(
        pa.table({"flight_id": [1000.0, 1002.0], "delayed": [True, False]}),
        tmp_path / "flights.parquet",
    )
    batch = ingest_labels(
        str(base), tmp_path / "flights.parquet", key="flight_id", label_column="delayed"
    )
    assert batch.key == "flight_id"
    stored = pq.read_table(batch.path).to_pylist()
    assert [(r["key_name"], r["key"], r["request_id"]) for r in stored] == [
        ("flight_id", "1000", None),
        ("flight_id", "1002", None),
    ]
    by_key = labels_of(joined_predictions(str(base), key="flight_id"))
    assert by_key == {("a", 0, 1): 1.0, ("b", 0, 1): None, ("c", 0, 1): 0.0}
    # Without the key, labels by key are not applied.
    assert set(labels_of(joined_predictions(str(base))).values()) == {None}
    with pytest.raises(SourceError, match=r"no feature 'flight' .*did you mean 'flight_id'"):
        joined_predictions(str(base), key="flight")


@pytest.mark.parametrize(
    ("header", "lines", "options", "message"),
    [
        ("request_id,lable", ["a,1"], {}, r"no column 'label'; did you mean 'lable'\?"),
        ("id,label", ["a,1"], {}, r"no column 'request_id'.*--id-column"),
        ("request_id,label", ["a,maybe"], {}, r"row 1: label 'maybe' .* not a finite number"),
        (
            "request_id,label",
            ["a,1", "b,2"],
            {"task": "binary_classification"},
            r"row 2: label 2 .* not 0/1 or true/false",
        ),
        ("request_id,label", ["a,1", ",0"], {}, r"row 2: empty id column 'request_id'"),
        ("request_id,label", ["a,1"], {"key": "flight_id"}, r"no column 'flight_id'.*--key"),
    ],
)
def test_bad_label_files_are_refused_with_a_clear_message(
    tmp_path: Path, header: str, lines: list[str], options: dict[str, str], message: str
) -> None:
    source = write_csv(tmp_path / "l.csv", header, lines)
    with pytest.raises(SourceError, match=message):
        ingest_labels(str(tmp_path / "artifacts"), source, **options)  # type: ignore[arg-type]
    assert not (tmp_path / "artifacts" / "labels").exists()


def test_missing_or_unknown_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        ingest_labels(str(tmp_path), tmp_path / "nope.csv")
    (tmp_path / "l.json").write_text("{}", encoding="utf-8")
    with pytest.raises(SourceError, match=r"unknown format '\.json'"):
        ingest_labels(str(tmp_path), tmp_path / "l.json")


def test_multiclass_labels_keep_class_names(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "l.csv", "request_id,label", ["a,cat", "b,2", "c,dog"])
    batch = ingest_labels(str(tmp_path), source, task="multiclass_classification")
    stored = pq.read_table(batch.path).to_pylist()
    assert [(r["label"], r["label_class"]) for r in stored] == [
        (None, "cat"),
        (2.0, None),
        (None, "dog"),
    ]
