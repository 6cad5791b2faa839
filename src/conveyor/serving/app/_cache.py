"""A small LRU + TTL cache of predictions, keyed by model version and canonical input bytes."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ResponseCache", "canonical_key"]

V = TypeVar("V")


class ResponseCache(Generic[V]):
    """At most ``size`` entries, each valid ``ttl`` seconds; the least recently used go first.

    Used from the event loop only, so it needs no lock.
    """

    def __init__(
        self, size: int, ttl: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.size = size
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, V]] = OrderedDict()

    def get(self, key: bytes) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: bytes, value: V) -> None:
        self._entries[key] = (self._clock() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def canonical_key(model_version: str, columns: Mapping[str, np.ndarray[Any, Any]]) -> bytes:
    """A digest of the validated input: equal for equal rows whatever format they came in."""
    digest = hashlib.blake2b(model_version.encode(), digest_size=20)
    for name in sorted(columns):
        values = columns[name]
        digest.update(f"\0{name}\0{values.dtype.str}\0{values.shape}\0".encode())
        if values.dtype.kind == "O":
            digest.update(repr(values.tolist()).encode())
        else:
            digest.update(values.tobytes())
    return digest.digest()
