"""Transactions shared by every part of the metadata store.

:class:`~conveyor.store.MetadataStore` is assembled from one class per concern (runs and the
rest in ``_store.py``, deployments, serving statistics, leases); they all open their
transactions through :class:`StoreBase`, so every method keeps the same locking rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ._engine import translate_errors

__all__ = ["StoreBase"]


class StoreBase:
    """The engines and the transaction helpers; subclasses set both engines in ``__init__``.

    ``_write`` transactions take SQLite's write lock up front (``BEGIN IMMEDIATE``);
    ``_read`` transactions never wait for writers.
    """

    _engine: Engine
    _read_engine: Engine

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with translate_errors(self._engine), Session(self._engine) as session, session.begin():
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with translate_errors(self._engine), Session(self._read_engine) as session:
            with session.begin():
                yield session

    @property
    def _postgres(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    def _insert(self) -> Any:
        # INSERT ... ON CONFLICT is spelled the same in both dialects, but lives in each.
        return postgresql.insert if self._postgres else sqlite.insert
