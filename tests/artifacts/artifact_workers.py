"""Functions run in spawned processes by test_local_folder.py.

Spawned children import their target by module name, so these live in a plain module that the
test puts on ``sys.path`` (pytest's importlib mode gives test modules names a child can't import).
"""

from __future__ import annotations

import time
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

from conveyor.artifacts import CHUNK_SIZE, ArtifactStore


def put_file_together(url: str, source: str, start: Barrier, results: Any) -> None:
    """Wait until every process is ready, then store ``source``; report the digest."""
    store = ArtifactStore(url)
    start.wait(timeout=60)
    results.put(store.put_file(Path(source)).digest)


class _StallingStream:
    """Yields a few chunks, signals, then hangs: the parent kills us mid-write."""

    def __init__(self, started: Event) -> None:
        self._started = started
        self._sent = 0

    def read(self, size: int, /) -> bytes:
        if self._sent == 3:
            self._started.set()
            time.sleep(600)
        self._sent += 1
        return b"x" * min(size, CHUNK_SIZE)


def put_until_killed(url: str, started: Event) -> None:
    ArtifactStore(url).put_stream(_StallingStream(started))
