"""Fixtures for the metadata store tests."""

from __future__ import annotations

import importlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from conveyor.store import MetadataStore


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    """An open store on each backend (PostgreSQL's is shared: filter by ``unique``)."""
    with MetadataStore(store_url) as opened:
        yield opened


@pytest.fixture
def unique() -> str:
    """A token unique to this test, for names that must not clash in a shared database."""
    return secrets.token_hex(6)


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The worker module, importable by name in "spawn" children (they inherit sys.path)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    yield importlib.import_module("_store_workers")
