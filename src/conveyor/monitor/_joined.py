"""The prediction log joined with the ground-truth labels (DuckDB), for live quality.

A prediction row takes the label of the latest ingestion among those that apply to it: labels
by request id with its row number or without one (every row of the request), and, when a key
is given, labels by that key matched with the log's ``in_<key>`` column. Shadow predictions
are labelled like the served ones (the label is about the request, not the model), which is
what makes a shadow version's live quality comparable with the champion's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.data._duckdb import connect, quote_identifier, sql_string
from conveyor.errors import SourceError
from conveyor.monitor._label_store import read_labels
from conveyor.monitor._labels import key_text
from conveyor.spec._base import did_you_mean

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

__all__ = [
    "JOINED_COLUMNS",
    "LabelMatches",
    "has_predictions",
    "joined_predictions",
    "label_matches",
]

JOINED_COLUMNS = (
    "request_id",
    "row",
    "timestamp",
    "model_version",
    "shadow",
    "score",
    "prediction",
    "predicted_class",
    "label",
    "label_class",
    "labeled_at",
)
"""Columns of :func:`joined_predictions`' table (``label`` null: not labelled yet)."""


@dataclass(frozen=True)
class LabelMatches:
    """How stored labels and logged predictions meet.

    Attributes:
        labels: Labels looked at (one ingestion's, or all).
        matched: Those labels matching at least one logged prediction.
        unmatched: Those matching none yet (kept: the prediction may be logged later).
        predictions: Logged predictions (rows, shadow ones included).
        labelled: Logged predictions that have a label now.
    """

    labels: int
    matched: int
    unmatched: int
    predictions: int
    labelled: int


def has_predictions(artifacts_url: str) -> bool:
    """Whether a prediction has been logged (always True for remote stores: not checked)."""
    log = f"{artifacts_url.rstrip('/')}/predictions"
    return "://" in log or any(Path(log).glob("**/*.parquet"))


def _log_source(artifacts_url: str) -> str:
    log = f"{artifacts_url.rstrip('/')}/predictions"
    if not has_predictions(artifacts_url):
        raise SourceError(
            f"no prediction has been logged under {log}; serve the model with the prediction "
            "log on (`serve.prediction_log.enabled`) and send it traffic"
        )
    files = sql_string(f"{log}/**/*.parquet")
    return f"read_parquet({files}, hive_partitioning = true, union_by_name = true)"


def _predictions_sql(
    con: duckdb.DuckDBPyConnection,
    source: str,
    key: str | None,
    since: datetime | None,
    until: datetime | None,
    versions: Sequence[int] | None,
    include_shadow: bool,
) -> str:
    """A SELECT of the log's rows with an id (``_pid``), score, prediction and key text."""
    types = {
        str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    }
    score = "NULL"
    if "out_proba" in types:
        score = "CASE WHEN len(out_proba) = 2 THEN CAST(out_proba[2] AS DOUBLE) END"
    prediction = predicted = "NULL"
    if "out_prediction" in types:
        prediction = "TRY_CAST(out_prediction AS DOUBLE)"
        predicted = key_text("out_prediction", types["out_prediction"])
    key_sql = "NULL"
    if key is not None:
        column = f"in_{key}"
        if column not in types:
            features = [name[3:] for name in types if name.startswith("in_")]
            raise SourceError(
                f"the prediction log has no feature {key!r} (column {column}) to join labels "
                f"by{did_you_mean(key, features)}; logged features: {', '.join(features)}"
            )
        key_sql = key_text(quote_identifier(column), types[column])
    where = ["TRUE"]
    if not include_shadow and "shadow" in types:
        where.append("NOT coalesce(shadow, false)")
    if since is not None:
        where.append(f"timestamp >= {sql_string(since.isoformat())}::TIMESTAMPTZ")
    if until is not None:
        where.append(f"timestamp < {sql_string(until.isoformat())}::TIMESTAMPTZ")
    if versions is not None:
        listed = ", ".join(str(int(v)) for v in versions) or "NULL"
        where.append(f"model_version IN ({listed})")
    shadow = "coalesce(shadow, false)" if "shadow" in types else "false"
    return (
        f"SELECT row_number() OVER () AS _pid, CAST(request_id AS VARCHAR) AS request_id, "
        f'CAST("row" AS INTEGER) AS "row", timestamp, CAST(model_version AS BIGINT) AS '
        f"model_version, {shadow} AS shadow, {score} AS score, {prediction} AS prediction, "
        f"{predicted} AS predicted_class, {key_sql} AS _key FROM {source} "
        f"WHERE {' AND '.join(where)}"
    )


def _candidates_sql(key: str | None) -> str:
    """Every (prediction, label) pair where the label applies to the prediction."""
    by_id = (
        "SELECT p._pid, l.label, l.label_class, l.labeled_at, l.ingested_at, l.seq "
        "FROM p JOIN l ON l.key IS NULL AND l.request_id = p.request_id "
        'AND (l."row" IS NULL OR l."row" = p."row")'
    )
    if key is None:
        return by_id
    return (
        f"{by_id} UNION ALL SELECT p._pid, l.label, l.label_class, l.labeled_at, "
        "l.ingested_at, l.seq FROM p JOIN l ON l.key_name = "
        f"{sql_string(key)} AND l.key = p._key"
    )


def joined_predictions(
    artifacts_url: str,
    *,
    key: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    versions: Sequence[int] | None = None,
    include_shadow: bool = False,
) -> pa.Table:
    """The logged predictions with their labels (null where none has arrived yet).

    Args:
        artifacts_url: The artifact store's root, holding ``predictions/`` and ``labels/``.
        key: Also join labels ingested by this feature (the log's ``in_<key>``).
        since: Only predictions logged at or after this time (aware).
        until: Only predictions logged before this time (aware).
        versions: Only these model versions.
        include_shadow: Keep shadow predictions too (column ``shadow``).

    Returns:
        One row per logged prediction row, oldest first, with :data:`JOINED_COLUMNS`:
        ``score`` is the positive class's probability (binary classifiers with
        probabilities), ``prediction`` the predicted value as a number when it is one,
        ``predicted_class`` as text; ``label``/``label_class`` as stored.

    Raises:
        SourceError: No prediction has been logged, the log cannot be read, or it does not
            have the key's feature.
        ArtifactError: The labels cannot be read.
    """
    labels = read_labels(artifacts_url)
    source = _log_source(artifacts_url)
    con = connect()
    try:
        con.register("l", labels)
        try:
            predictions = _predictions_sql(con, source, key, since, until, versions, include_shadow)
            query = (
                f"WITH p AS ({predictions}), c AS ({_candidates_sql(key)}), "
                "best AS (SELECT * FROM c QUALIFY row_number() OVER "
                "(PARTITION BY _pid ORDER BY ingested_at DESC, seq DESC) = 1) "
                'SELECT p.request_id, p."row", p.timestamp, p.model_version, p.shadow, p.score, '
                "p.prediction, p.predicted_class, best.label, best.label_class, best.labeled_at "
                'FROM p LEFT JOIN best USING (_pid) ORDER BY p.timestamp, p.request_id, p."row", '
                "p.shadow"
            )
            table: pa.Table = con.sql(query).to_arrow_table()
        except SourceError:
            raise
        except Exception as err:  # duckdb.Error
            raise SourceError(
                f"cannot join the prediction log under {artifacts_url} with the labels: {err}"
            ) from err
    finally:
        con.close()
    return table


def label_matches(
    artifacts_url: str, *, key: str | None = None, path: str | None = None
) -> LabelMatches:
    """Count the labels (of the file ``path``, or all) matching logged predictions.

    Without a prediction log every label counts as unmatched.

    Raises:
        SourceError: The log cannot be read.
        ArtifactError: The labels cannot be read.
    """
    import pyarrow.compute as pc

    labels = read_labels(artifacts_url)
    mine = labels
    if path is not None:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        mine = labels.filter(pc.equal(labels.column("file"), name))
    if not has_predictions(artifacts_url):
        return LabelMatches(mine.num_rows, 0, mine.num_rows, 0, 0)
    source = _log_source(artifacts_url)
    con = connect()
    try:
        con.register("mine", mine)
        con.register("all_labels", labels)
        predictions = _predictions_sql(con, source, key, None, None, None, True)
        matched_sql = (
            f"WITH p AS ({predictions}), l AS (SELECT * FROM mine), c AS ({_candidates_sql(key)}) "
            "SELECT count(DISTINCT seq) FROM c"
        )
        matched_row = con.execute(matched_sql).fetchone()
        matched = int(matched_row[0]) if matched_row else 0
        coverage_sql = (
            f"WITH p AS ({predictions}), l AS (SELECT * FROM all_labels), "
            f"c AS ({_candidates_sql(key)}) "
            "SELECT (SELECT count(*) FROM p), (SELECT count(DISTINCT _pid) FROM c)"
        )
        total, labelled = con.execute(coverage_sql).fetchone() or (0, 0)
    except SourceError:
        raise
    except Exception as err:  # duckdb.Error
        raise SourceError(f"cannot read the prediction log under {artifacts_url}: {err}") from err
    finally:
        con.close()
    return LabelMatches(mine.num_rows, matched, mine.num_rows - matched, int(total), int(labelled))
