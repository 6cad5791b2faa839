"""Snapshots: same input → same version; lineage without secrets; failures record nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.artifacts import ArtifactStore
from conveyor.data import RAW, dataset_name, take_snapshot
from conveyor.errors import SourceError
from conveyor.spec import parse_spec
from conveyor.store import MetadataStore

FLIGHTS = "carrier,origin,distance\nUA,EWR,1400\nAA,JFK,1089\nB6,LGA,1576\n"
AIRPORTS = "origin,name\nEWR,Newark\nJFK,Kennedy\nLGA,LaGuardia\n"


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[MetadataStore, ArtifactStore]]:
    with MetadataStore(f"sqlite:///{tmp_path / 'state' / 'c.db'}") as store:
        yield store, ArtifactStore(str(tmp_path / "state" / "artifacts"))


def snapshot(
    tmp_path: Path,
    stores: tuple[MetadataStore, ArtifactStore],
    spec_text: str,
    *,
    allow_schema_change: bool = False,
    environ: dict[str, str] | None = None,
):  # type: ignore[no-untyped-def]
    loaded = parse_spec(spec_text, environ=environ or {})
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    store, artifacts = stores
    return take_snapshot(
        loaded.spec.name,
        loaded.spec.sources,
        loaded.spec.dataset,
        raw_sources=dict(loaded.raw.get("sources") or {}),
        project_root=tmp_path,
        workdir=work,
        store=store,
        artifacts=artifacts,
        allow_schema_change=allow_schema_change,
    )


ONE = "name: p\nsources:\n  flights: {type: file, path: flights.csv}\n"
JOIN = ONE + (
    "  airports: {type: file, path: airports.csv}\n"
    "dataset:\n  query: select f.*, a.name from flights f join airports a using (origin)\n"
)


def test_same_input_gives_the_same_version(
    tmp_path: Path, stores: tuple[MetadataStore, ArtifactStore]
) -> None:
    (tmp_path / "flights.csv").write_text(FLIGHTS)
    first = snapshot(tmp_path, stores, ONE)
    second = snapshot(tmp_path, stores, ONE)
    assert first.version == second.version
    store, artifacts = stores
    assert store.list_dataset_versions(name=dataset_name("p", RAW)) == [first.version]
    assert first.version.row_count == 3
    assert first.version.schema == {"carrier": "VARCHAR", "origin": "VARCHAR", "distance": "BIGINT"}
    assert artifacts.exists(first.version.sha256)
    assert first.version.artifacts == {"data": first.version.sha256}

    (tmp_path / "flights.csv").write_text(FLIGHTS + "DL,JFK,760\n")
    third = snapshot(tmp_path, stores, ONE)
    assert third.version.id != first.version.id
    assert third.version.row_count == 4


def test_row_order_is_not_identity_and_stored_bytes_are_reused(
    tmp_path: Path, stores: tuple[MetadataStore, ArtifactStore]
) -> None:
    (tmp_path / "flights.csv").write_text(FLIGHTS)
    first = snapshot(tmp_path, stores, ONE)
    header, *rows = FLIGHTS.splitlines()
    (tmp_path / "flights.csv").write_text("\n".join([header, *reversed(rows)]) + "\n")
    again = snapshot(tmp_path, stores, ONE)
    assert again.version == first.version
    assert again.path.read_bytes() == stores[1].get_bytes(first.version.sha256)
    assert len(list(stores[1].list())) == 1  # no second copy of the same data


def test_query_joins_sources_and_lineage_names_them(
    tmp_path: Path, stores: tuple[MetadataStore, ArtifactStore]
) -> None:
    (tmp_path / "flights.csv").write_text(FLIGHTS)
    (tmp_path / "airports.csv").write_text(AIRPORTS)
    result = snapshot(tmp_path, stores, JOIN)
    assert result.version.row_count == 3
    assert "name" in result.version.schema
    lineage = result.version.source
    assert set(lineage["sources"]) == {"flights", "airports"}
    assert "join airports" in lineage["query"]


def test_secrets_stay_out_of_the_lineage(
    tmp_path: Path, stores: tuple[MetadataStore, ArtifactStore], postgres_url: str
) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS lineage_t"))
        conn.execute(sa.text("CREATE TABLE lineage_t AS SELECT 1 AS a UNION ALL SELECT 2"))
    engine.dispose()
    secret_url = postgres_url.replace("postgres@", "postgres:hunter2@")
    text = (
        "name: p\nsources:\n  db: {type: sql, url: '${DB_URL}', query: select a from lineage_t}\n"
    )
    result = snapshot(tmp_path, stores, text, environ={"DB_URL": secret_url})
    assert result.version.row_count == 2
    stored = str(stores[0].get_dataset_version(result.version.id).source)
    assert "${DB_URL}" in stored
    assert "hunter2" not in stored


@pytest.mark.parametrize(
    ("files", "spec_text", "message"),
    [
        ({}, ONE, "flights"),
        ({"flights.csv": "carrier,origin,distance\n"}, ONE, "dataset is empty"),
        (
            {"flights.csv": FLIGHTS, "airports.csv": AIRPORTS},
            JOIN.replace("join airports a", "join airprots a"),
            "dataset.query",
        ),
        (
            {"flights.csv": FLIGHTS + 'UA,"EWR,1400\n'},
            ONE,
            "flights",
        ),
    ],
    ids=["missing-file", "empty", "bad-query", "unreadable-line"],
)
def test_failures_name_the_culprit_and_record_nothing(
    tmp_path: Path,
    stores: tuple[MetadataStore, ArtifactStore],
    files: dict[str, str],
    spec_text: str,
    message: str,
) -> None:
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    with pytest.raises(SourceError, match=message):
        snapshot(tmp_path, stores, spec_text)
    assert stores[0].list_dataset_versions() == []


def test_schema_change_is_refused_unless_allowed(
    tmp_path: Path, stores: tuple[MetadataStore, ArtifactStore]
) -> None:
    (tmp_path / "flights.csv").write_text(FLIGHTS)
    first = snapshot(tmp_path, stores, ONE)
    (tmp_path / "flights.csv").write_text(
        FLIGHTS.replace("distance", "dist").replace("1400", "far")
    )
    with pytest.raises(
        SourceError, match=r"columns changed since dataset version .*removed distance"
    ):
        snapshot(tmp_path, stores, ONE)
    assert stores[0].list_dataset_versions() == [first.version]
    allowed = snapshot(tmp_path, stores, ONE, allow_schema_change=True)
    assert "dist" in allowed.version.schema
