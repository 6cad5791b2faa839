"""One fixture that runs the artifact-store suite on every backend: a local folder and memory://."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest

from conveyor.artifacts import ArtifactStore


@dataclass
class Backend:
    """A store plus raw access to its storage, to inspect and damage objects behind its back."""

    name: str
    store: ArtifactStore
    fs: Any
    root: str

    def object_path(self, digest: str) -> str:
        return f"{self.root}/objects/{digest[:2]}/{digest[2:]}"

    def read_raw(self, digest: str) -> bytes:
        data: bytes = self.fs.cat_file(self.object_path(digest))
        return data

    def write_raw(self, digest: str, data: bytes) -> None:
        """Overwrite the stored object, as bit rot or a careless user would."""
        path = self.object_path(digest)
        if self.name == "local":
            mode = os.stat(path).st_mode
            os.chmod(path, 0o644)
            Path(path).write_bytes(data)
            os.chmod(path, mode)
        else:
            self.fs.pipe_file(path, data)

    def info(self, digest: str) -> dict[str, Any]:
        """Everything the filesystem reports about the object (inode, mtime, ... when local)."""
        info: dict[str, Any] = self.fs.info(self.object_path(digest))
        return info

    def temp_entries(self) -> list[str]:
        tmp = f"{self.root}/tmp"
        return list(self.fs.find(tmp)) if self.fs.exists(tmp) else []


@pytest.fixture(params=["local", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "local":
        url = str(tmp_path / "store")
    else:
        # The memory filesystem is one dict per process: a unique root keeps tests apart.
        url = f"memory://conveyor-tests-{uuid.uuid4().hex}/store"
    fs, root = fsspec.core.url_to_fs(url)
    yield Backend(request.param, ArtifactStore(url), fs, root)
    if request.param == "memory":
        bucket = root.rsplit("/", 1)[0]
        if fs.exists(bucket):
            fs.rm(bucket, recursive=True)


@pytest.fixture
def store(backend: Backend) -> ArtifactStore:
    return backend.store
