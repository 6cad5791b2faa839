"""Snapshots: the sources, read by DuckDB, become one content-addressed Parquet file.

Each snapshot is recorded as a dataset version whose id derives from its name and content, so
the same input gives the same version (and no duplicate). A snapshot is recorded only after its
file is complete and stored: a failure at any point leaves no version behind.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.data._duckdb import connect, quote_identifier, sql_string
from conveyor.digests import digest_json
from conveyor.errors import RecordNotFoundError, SourceError

if TYPE_CHECKING:
    import duckdb

    from conveyor.artifacts import ArtifactStore
    from conveyor.data.sources import BaseSource
    from conveyor.spec import DatasetSpec, Source
    from conveyor.store import DatasetVersionRecord, MetadataStore

__all__ = [
    "RAW",
    "VALIDATED",
    "Snapshot",
    "content_identity",
    "dataset_name",
    "dataset_query",
    "existing_version",
    "open_sources",
    "take_snapshot",
    "version_id",
]

RAW = "raw"
VALIDATED = "validated"


def dataset_name(project: str, stage: str) -> str:
    """The dataset-version name of a project's ``raw`` or ``validated`` snapshots."""
    return f"{project}/{stage}"


def version_id(name: str, content: str) -> str:
    """A version id that only the same name and the same content digest give."""
    return digest_json([name, content])[:16]


@dataclass(frozen=True)
class Snapshot:
    """A recorded dataset version and a local copy of its Parquet file."""

    version: DatasetVersionRecord
    path: Path


def take_snapshot(
    project: str,
    sources: Mapping[str, Source],
    dataset: DatasetSpec | None,
    *,
    raw_sources: Mapping[str, Any],
    project_root: Path,
    workdir: Path,
    store: MetadataStore,
    artifacts: ArtifactStore,
    allow_schema_change: bool = False,
    run_id: str | None = None,
) -> Snapshot:
    """Read every source, apply ``dataset.query``, store the result and record a version.

    Args:
        raw_sources: The spec's sources before environment expansion, for lineage without secrets.
        allow_schema_change: Record a snapshot whose columns differ from the previous version's.

    Raises:
        SourceError: a source cannot be read, the query fails, the result is empty, or the
            columns changed since the last version (and that is not allowed).
    """
    con, built = open_sources(sources, project_root=project_root, workdir=workdir)
    query = dataset_query(dataset, list(built))
    target = workdir / "snapshot.parquet"
    try:
        with _reading(built, query):
            con.execute(
                f"COPY ({query}) TO {sql_string(target)} (FORMAT parquet, COMPRESSION zstd)"
            )
    finally:
        con.close()
    schema, rows, fingerprint = content_identity(target)
    if rows == 0:
        raise SourceError(
            f"the dataset is empty: {_what(built, dataset)} returned no rows; check the sources "
            "and `dataset.query` (filters, joins)"
        )
    name = dataset_name(project, RAW)
    identity = version_id(name, fingerprint)
    existing = existing_version(store, identity)
    if existing is not None and artifacts.exists(existing.sha256):
        # The same content again: keep the stored bytes, so everything downstream stays cached.
        return Snapshot(existing, artifacts.get_file(existing.sha256, target))
    if not allow_schema_change:
        _check_schema(store, name, schema)
    ref = artifacts.put_file(target)
    version = store.add_dataset_version(
        id=identity,
        name=name,
        sha256=ref.digest,
        row_count=rows,
        schema=schema,
        source={
            "sources": {n: s.lineage(raw_sources.get(n, {})) for n, s in built.items()},
            "query": query,
        },
        run_id=run_id,
        artifacts={"data": ref.digest},
        stats={"bytes": ref.size, "fingerprint": fingerprint},
    )
    return Snapshot(version, target)


def content_identity(parquet: Path) -> tuple[dict[str, str], int, str]:
    """The columns, the row count and an order-free digest of a Parquet file's content.

    Row order is not part of a dataset's identity: a parallel join may emit the same rows in
    another order each time. The digest covers the schema, the row count and the sum of the
    rows' hashes, so the same rows in any order give the same digest.
    """
    with connect(parquet.parent) as con:
        source = f"read_parquet({sql_string(parquet)})"
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        schema = {str(row[0]): str(row[1]) for row in described}
        counted = con.execute(f"SELECT count(*), sum(hash(t))::VARCHAR FROM {source} t").fetchall()
    rows = int(counted[0][0])
    return schema, rows, digest_json({"schema": schema, "rows": rows, "sum": str(counted[0][1])})


def existing_version(store: MetadataStore, identity: str) -> DatasetVersionRecord | None:
    """The recorded version with this id, if any."""
    try:
        return store.get_dataset_version(identity)
    except RecordNotFoundError:
        return None


def open_sources(
    sources: Mapping[str, Source], *, project_root: Path, workdir: Path
) -> tuple[duckdb.DuckDBPyConnection, dict[str, BaseSource[Any]]]:
    """A DuckDB connection in which every source is a table named after it (caller closes it).

    Raises:
        SourceError: there are no sources, or one cannot be registered.
    """
    from conveyor.data.sources import build_source

    if not sources:
        raise SourceError("the spec declares no `sources:`; add one to read data")
    built = {
        name: build_source(name, cfg, project_root=project_root) for name, cfg in sources.items()
    }
    con = connect(workdir)
    try:
        for source in built.values():
            source.register(con, workdir)
    except BaseException:
        con.close()
        raise
    return con, built


def dataset_query(dataset: DatasetSpec | None, names: list[str]) -> str:
    """The SQL that builds the dataset: ``dataset.query``, or the one source as it is."""
    if dataset is not None and dataset.query:
        return dataset.query.strip().rstrip(";")
    if len(names) != 1:  # the spec loader already insists on a query for several sources
        raise SourceError(
            f"several sources ({', '.join(names)}) need a `dataset.query` to join them"
        )
    return f"SELECT * FROM {quote_identifier(names[0])}"


def _what(built: Mapping[str, BaseSource[Any]], dataset: DatasetSpec | None) -> str:
    if dataset is not None and dataset.query:
        return "`dataset.query`"
    return f"source {next(iter(built))!r}"


@contextmanager
def _reading(built: Mapping[str, BaseSource[Any]], query: str) -> Iterator[None]:
    """Name the source (or the query) behind a DuckDB error raised while the data is read."""
    import duckdb

    try:
        yield
    except duckdb.Error as err:
        message = str(err).strip()
        culprits = [
            name
            for name, source in built.items()
            if any(str(path) in message for path in source.files())
        ]
        query_error = duckdb.ParserException | duckdb.BinderException | duckdb.CatalogException
        if isinstance(err, query_error) and not culprits:
            where = "`dataset.query`"
            fix = "fix the query in conveyor.yaml (each source is a table named after its key)"
        elif culprits or len(built) == 1:
            where = f"source {(culprits or list(built))[0]!r}"
            fix = "fix the data or the source's `options:`"
        else:
            where = "the sources"
            fix = "fix the data or the sources' `options:`"
        raise SourceError(f"reading {where} failed: {message}; {fix}") from err


def _check_schema(store: MetadataStore, name: str, schema: Mapping[str, str]) -> None:
    previous = store.list_dataset_versions(name=name, limit=1)
    if not previous or previous[0].schema == dict(schema):
        return
    before = previous[0].schema
    removed = [c for c in before if c not in schema]
    added = [c for c in schema if c not in before]
    retyped = [
        f"{c} {before[c]} -> {schema[c]}" for c in schema if c in before and before[c] != schema[c]
    ]
    changes = []
    for column in removed:
        near = difflib.get_close_matches(column, added, n=1)
        changes.append(f"removed {column}" + (f" (renamed to {near[0]}?)" if near else ""))
    changes += [f"added {c}" for c in added]
    changes += [f"retyped {c}" for c in retyped]
    raise SourceError(
        f"the sources' columns changed since dataset version {previous[0].id}: "
        f"{'; '.join(changes)}. If this is intended, set `dataset.on_schema_change: allow` "
        "(or pass --allow-schema-change) and run again; otherwise fix the source"
    )
