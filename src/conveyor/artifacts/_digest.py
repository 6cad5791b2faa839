"""Digests: what a valid one looks like, and computing one while bytes stream past."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

from conveyor.errors import ArtifactError

# 1 MiB: large enough that per-call overhead vanishes next to sha256 and the copy, small enough
# that a multi-gigabyte artifact streams in constant memory.
CHUNK_SIZE = 1 << 20

# fullmatch, not match with `$`: `$` also matches before a trailing newline.
_DIGEST = re.compile(r"[0-9a-f]{64}")


class Readable(Protocol):
    """Anything with ``read(size) -> bytes``: open files, ``io.BytesIO``, HTTP response bodies."""

    def read(self, size: int, /) -> bytes: ...


class Writable(Protocol):
    """Anything with ``write(data)``: open files, ``io.BytesIO``, fsspec files."""

    def write(self, data: bytes, /) -> int: ...


def is_digest(text: str) -> bool:
    """Whether ``text`` is a sha256 hex digest (64 lowercase hexadecimal characters)."""
    return isinstance(text, str) and _DIGEST.fullmatch(text) is not None


def check_digest(digest: str) -> str:
    """Return ``digest`` unchanged if it is a sha256 hex digest, else raise.

    Digests become object paths, so anything else (``../x``, uppercase, a truncated copy) is
    refused here, before it can reach a filesystem.

    Raises:
        ArtifactError: ``digest`` is not 64 lowercase hexadecimal characters.
    """
    if is_digest(digest):
        return digest
    shown = repr(digest)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise ArtifactError(
        f"Invalid artifact digest {shown}: expected 64 lowercase hexadecimal characters "
        "(a sha256, as in ArtifactRef.digest). Check where this digest came from; "
        "it may be truncated, mistyped or upper-cased."
    )


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """The address of one stored artifact.

    Attributes:
        digest: sha256 of the content, 64 lowercase hexadecimal characters.
        size: Length of the content in bytes.
    """

    digest: str
    size: int

    def __post_init__(self) -> None:
        check_digest(self.digest)
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ArtifactError(
                f"Invalid size {self.size!r} for artifact {self.digest}: "
                "expected a non-negative number of bytes."
            )


def copy_hashing(src: Readable, dst: Writable | None = None) -> ArtifactRef:
    """Read ``src`` to its end in chunks, hashing it and copying it to ``dst`` if given.

    Memory use stays at one chunk whatever the size of the stream.

    Returns:
        The digest and size of everything read.
    """
    sha = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK_SIZE):
        sha.update(chunk)
        size += len(chunk)
        if dst is not None:
            dst.write(chunk)
    return ArtifactRef(sha.hexdigest(), size)
