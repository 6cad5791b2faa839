"""A read-only stream over one artifact that checks its sha256 as the bytes go by."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from conveyor.artifacts._digest import CHUNK_SIZE
from conveyor.errors import ArtifactCorruptedError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class VerifyingReader(io.BufferedIOBase):
    """Sequential reader that raises ``ArtifactCorruptedError`` when the content is wrong.

    The check runs as soon as the end is reached (``read()`` without a size reads everything and
    checks at once). Closing before the end reads the rest to finish the check, so a
    ``with store.open(d) as f:`` block that ends without an error has seen only bytes that
    matched their digest. If the block raises, the rest is not read and that error propagates
    unchanged; a reader dropped without ``close()`` is not checked either. Not seekable: hashing
    needs the bytes in order (use ``ArtifactStore.local_path`` or ``get_file`` for random access).
    """

    def __init__(
        self,
        raw: Any,
        digest: str,
        corrupted: Callable[[str, int], ArtifactCorruptedError],
    ) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._corrupted = corrupted
        self._sha = hashlib.sha256()
        self._size = 0
        self._checked = False
        self._abandoned = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed artifact reader.")
        whole = size is None or size < 0
        data: bytes = self._raw.read(-1 if whole else size)
        self._sha.update(data)
        self._size += len(data)
        if whole or (not data and size != 0):
            self._check()
        return data

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._checked and not self._abandoned:
                while self.read(CHUNK_SIZE):
                    pass
        finally:
            self._raw.close()
            super().close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The caller's own error says more than a checksum of bytes it no longer wants.
        if exc_type is not None:
            self._abandoned = True
        self.close()

    def __del__(self) -> None:
        # Garbage collection must neither download the rest of an object nor raise.
        self._abandoned = True
        super().__del__()

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        actual = self._sha.hexdigest()
        if actual != self._digest:
            raise self._corrupted(actual, self._size)
