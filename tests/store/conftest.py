"""Fixtures for the metadata store tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

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
