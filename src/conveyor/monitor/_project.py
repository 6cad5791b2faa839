"""Drift of a project's served model: the prediction log's newest window against a reference.

* The window: the newest ``rows`` rows of the prediction log
  (``<artifacts>/predictions/**/*.parquet``, see :mod:`conveyor.serving._predlog`), shadow
  predictions left out, newest first by ``timestamp``.
* The reference: the training data of the ``champion`` model version (its registry tag
  ``conveyor.dataset_version`` names a dataset version whose Parquet snapshot is in the
  artifact store), compared with the log's ``in_<feature>`` columns; or the window before the
  newest one, which also compares the predictions (``out_*``).
* Reports are kept as ``<project>/reports/drift-<utc>.json`` and ``.html``; each HTML page
  plots the scores of the reports before it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from conveyor.data._duckdb import connect, sql_string
from conveyor.errors import RegistryError, SourceError
from conveyor.monitor._report import DriftReport

if TYPE_CHECKING:
    import pyarrow as pa

    from conveyor.artifacts import ArtifactStore
    from conveyor.registry import ModelRegistry
    from conveyor.store import MetadataStore

__all__ = [
    "DATASET_TAG",
    "HISTORY_REPORTS",
    "load_history",
    "prediction_window",
    "save_report",
    "training_reference",
]

DATASET_TAG: Final = "conveyor.dataset_version"
HISTORY_REPORTS: Final = 30
"""Earlier reports plotted over time in a new report's HTML page."""


def prediction_window(artifacts_url: str, rows: int, *, skip: int = 0) -> pa.Table:
    """The newest ``rows`` logged predictions after skipping the ``skip`` newest, as Arrow.

    Raises:
        SourceError: no prediction has been logged, or the log cannot be read.
    """
    log = f"{artifacts_url.rstrip('/')}/predictions"
    if "://" not in log and not any(Path(log).glob("**/*.parquet")):
        raise SourceError(
            f"no prediction has been logged under {log}; serve the model with the prediction "
            "log on (`serve.prediction_log.enabled`) and send it traffic"
        )
    files = sql_string(f"{log}/**/*.parquet")
    con = connect()
    try:
        source = f"read_parquet({files}, hive_partitioning = true, union_by_name = true)"
        names = [str(row[0]) for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        served = "WHERE NOT coalesce(shadow, false)" if "shadow" in names else ""
        order = "ORDER BY timestamp DESC" if "timestamp" in names else ""
        query = f"SELECT * FROM {source} {served} {order} LIMIT {int(rows)} OFFSET {int(skip)}"
        table: pa.Table = con.sql(query).to_arrow_table()
    except Exception as err:  # duckdb.Error
        raise SourceError(f"cannot read the prediction log under {log}: {err}") from err
    finally:
        con.close()
    return table


def training_reference(
    registry: ModelRegistry, store: MetadataStore, artifacts: ArtifactStore, workdir: Path
) -> tuple[Path, str]:
    """The champion's training data as a local Parquet file, and a line saying what it is.

    Raises:
        RegistryError: there is no champion, or it does not name its training data.
        RecordNotFoundError: the dataset version it names is not in the metadata store.
        ArtifactNotFoundError: the snapshot's file is not in the artifact store.
    """
    from conveyor.registry import CHAMPION

    champion = registry.alias(CHAMPION)
    if champion is None:
        raise RegistryError(
            f"model {registry.name!r} has no champion to compare with; run `conveyor run` "
            "first, or compare two windows of the log with `--reference previous`"
        )
    version_id = champion.tags.get(DATASET_TAG)
    if not version_id:
        raise RegistryError(
            f"the champion (version {champion.version}) has no {DATASET_TAG} tag, so its "
            "training data is unknown; compare two windows of the log with "
            "`--reference previous`"
        )
    record = store.get_dataset_version(version_id)
    path = artifacts.local_path(record.sha256)
    if path is None:  # a remote store: copy (and verify) the snapshot first
        path = artifacts.get_file(record.sha256, workdir / f"{record.id}.parquet")
    what = f"the training data of version {champion.version} (dataset version {record.id})"
    return path, what


def save_report(
    report: DriftReport, folder: Path, history: Sequence[DriftReport] = ()
) -> tuple[Path, Path]:
    """Write ``drift-<utc>.json`` and ``drift-<utc>.html`` into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = report.created_at.strftime("%Y%m%dT%H%M%S%fZ")
    json_path = folder / f"drift-{stamp}.json"
    tmp = json_path.with_suffix(".json.part")
    tmp.write_text(json.dumps(report.to_json(), indent=1, allow_nan=False), encoding="utf-8")
    os.replace(tmp, json_path)
    html_path = report.render_html(folder / f"drift-{stamp}.html", history=history)
    return json_path, html_path


def load_history(folder: Path, limit: int = HISTORY_REPORTS) -> list[DriftReport]:
    """The newest ``limit`` reports saved in ``folder`` (unreadable files are skipped)."""
    found = []
    for path in sorted(folder.glob("drift-*.json"))[-limit:]:
        try:
            found.append(DriftReport.from_json(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(found, key=lambda r: r.created_at)
