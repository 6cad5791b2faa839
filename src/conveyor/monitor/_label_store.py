"""Where labels live: one Parquet file per ingestion under ``{artifacts_url}/labels/``.

Local files are written under a dot-name in the same folder and renamed, so readers never see a
partial file; other stores receive each file as one object.
"""

from __future__ import annotations

import os
import secrets
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from conveyor.artifacts._filesystem import is_local, open_filesystem
from conveyor.errors import ArtifactError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["label_schema", "read_labels", "write_labels"]


def label_schema() -> pa.Schema:
    import pyarrow as pa

    stamp = pa.timestamp("us", tz="UTC")
    return pa.schema(
        [
            ("request_id", pa.string()),
            ("row", pa.int32()),
            ("key_name", pa.string()),
            ("key", pa.string()),
            ("label", pa.float64()),
            ("label_class", pa.string()),
            ("labeled_at", stamp),
            ("ingested_at", stamp),
        ]
    )


def _labels_root(artifacts_url: str) -> tuple[Any, str]:
    fs, root = open_filesystem(artifacts_url, {})
    return fs, f"{str(root).rstrip('/')}/labels"


def write_labels(artifacts_url: str, table: pa.Table, when: datetime) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, folder = _labels_root(artifacts_url)
    name = f"part-{when:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.parquet"
    target = f"{folder}/{name}"
    try:
        if not is_local(fs):
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression="zstd")
            fs.pipe_file(target, sink.getvalue().to_pybytes())
            return str(fs.unstrip_protocol(target))
        os.makedirs(folder, exist_ok=True)
        # A dot-name without the .parquet suffix: readers globbing *.parquet never see it.
        tmp = f"{folder}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with open(tmp, "xb") as out:
                pq.write_table(table, out, compression="zstd")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as err:
        raise ArtifactError(
            f"cannot write labels to {folder}: {err}; make sure the artifact store is writable"
        ) from err
    return target


def read_labels(artifacts_url: str) -> pa.Table:
    """Every stored label in ingestion order, plus ``seq`` (int64, that order) and ``file``.

    Raises:
        ArtifactError: A label file cannot be read.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, folder = _labels_root(artifacts_url)
    try:
        paths = sorted(fs.glob(f"{folder}/part-*.parquet")) if fs.exists(folder) else []
        tables = [pq.read_table(p, filesystem=fs, schema=label_schema()) for p in paths]
    except (OSError, pa.ArrowException) as err:
        raise ArtifactError(f"cannot read the labels under {folder}: {err}") from err
    table = pa.concat_tables(tables) if tables else label_schema().empty_table()
    names = [
        p.rsplit("/", 1)[-1] for p, t in zip(paths, tables, strict=True) for _ in range(t.num_rows)
    ]
    table = table.append_column("seq", pa.array(range(table.num_rows), pa.int64()))
    return table.append_column("file", pa.array(names, pa.string()))
