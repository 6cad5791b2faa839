"""A real metadata store (SQLite) and artifact store (local folder) for runner tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor.artifacts import ArtifactStore
from conveyor.pipeline import Pipeline, Runner, RunReporter, Step
from conveyor.store import MetadataStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    with MetadataStore(f"sqlite:///{tmp_path / 'state' / 'conveyor.db'}") as opened:
        yield opened


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "state" / "artifacts"))


@pytest.fixture
def make_runner(
    store: MetadataStore, artifacts: ArtifactStore, tmp_path: Path
) -> Callable[..., Runner]:
    def make(steps: list[Step], reporter: RunReporter | None = None) -> Runner:
        return Runner(
            Pipeline(steps),
            store=store,
            artifacts=artifacts,
            project="demo",
            project_root=tmp_path,
            spec_hash="0" * 64,
            reporter=reporter,
            heartbeat_s=0.05,
        )

    return make
