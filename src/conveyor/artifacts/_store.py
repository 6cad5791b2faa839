"""The content-addressed artifact store."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from conveyor.artifacts._digest import (
    ArtifactRef,
    Readable,
    check_digest,
    copy_hashing,
    is_digest,
)
from conveyor.artifacts._filesystem import is_local, open_filesystem
from conveyor.artifacts._reader import VerifyingReader
from conveyor.errors import ArtifactCorruptedError, ArtifactError, ArtifactNotFoundError

# Reading a path below a regular file fails with ENOTDIR rather than ENOENT; both mean "absent".
_ABSENT = (FileNotFoundError, NotADirectoryError)


class ArtifactStore:
    """Immutable blobs addressed by the sha256 of their content, on any fsspec filesystem.

    Layout: ``<root>/objects/<first 2 hex>/<other 62 hex>``; writes are staged under
    ``<root>/tmp/``. A plain path or ``file://`` URL is a local folder; other URLs
    (``memory://``, ``s3://`` with the ``s3`` extra, ...) go through fsspec.

    Invariants:
        - Writes are atomic: content is written and hashed under ``tmp/`` and only then given its
          final name (a hard link or rename on a local folder, a single object put or move on an
          object store), so no half-written object is ever visible under its final name, even
          if the process dies mid-write. A failed write removes its temporary file.
        - Objects are immutable: storing content that is already present writes nothing. Local
          objects are made read-only (0o444) to discourage edits.
        - Reads verify: ``get_bytes``, ``get_file``, ``open`` and ``verify`` raise
          ``ArtifactCorruptedError`` when the bytes do not hash to their digest, and change
          nothing on storage when they do.
        - Safe for several threads and processes storing the same content at once: every writer
          succeeds and one valid object remains. A local folder never replaces a present object
          of the right size; on object stores the last of several racing puts of the same
          content wins, which is harmless because they are byte-identical.
        - Digests are checked (64 lowercase hex) before any path is built from them.

    Instances hold no open resources, may be shared between threads and are picklable.
    """

    def __init__(self, url: str, **storage_options: Any) -> None:
        """Open the store at ``url``; nothing is created until the first write.

        Args:
            url: A local folder path, or an fsspec URL such as ``s3://bucket/prefix``.
            **storage_options: Passed to the fsspec filesystem (credentials, endpoint, ...).

        Raises:
            BackendUnavailableError: The URL's fsspec implementation is not installed; the
                message names the extra to install.
            ArtifactError: The URL is empty or its protocol unknown.
        """
        self._fs, root = open_filesystem(url, storage_options)
        self._root = root.rstrip("/")
        self._local = is_local(self._fs)
        self._url = str(self._fs.unstrip_protocol(self._root))

    @property
    def url(self) -> str:
        """The store's root as an absolute URL, e.g. ``file:///srv/project/.conveyor/artifacts``."""
        return self._url

    def __repr__(self) -> str:
        return f"ArtifactStore({self._url!r})"

    # -- writing ----------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> ArtifactRef:
        """Store ``data`` and return its address; content already present is not rewritten."""
        ref = ArtifactRef(hashlib.sha256(data).hexdigest(), len(data))
        if self._stored_size(ref.digest) == ref.size:
            return ref

        def write(out: BinaryIO) -> ArtifactRef:
            out.write(data)
            return ref

        return self._store(write)

    def put_file(self, path: Path | str) -> ArtifactRef:
        """Store the file at ``path``, streamed in chunks (memory use does not grow with size)."""
        source = Path(path)
        if not self._local:
            # On an object store the upload dominates; hashing the file first lets a re-run
            # skip uploading content that is already there.
            with source.open("rb") as f:
                ref = copy_hashing(f)
            if self._stored_size(ref.digest) == ref.size:
                return ref
        with source.open("rb") as f:
            return self.put_stream(f)

    def put_stream(self, stream: Readable) -> ArtifactRef:
        """Store everything ``stream.read(n)`` yields until it returns ``b""``.

        If reading fails midway, the error propagates and nothing is stored.
        """
        return self._store(lambda out: copy_hashing(stream, out))

    def _store(self, write: Callable[[BinaryIO], ArtifactRef]) -> ArtifactRef:
        """Write a temporary file with ``write`` (which returns what it wrote), then publish it."""
        tmp = f"{self._root}/tmp/{uuid.uuid4().hex}.part"
        try:
            with self._open_temp(tmp) as out:
                ref = write(out)
                if self._local:
                    # The object must be on disk before its name is: a crash right after the
                    # link must not leave an empty file under a digest that promises content.
                    out.flush()
                    os.fsync(out.fileno())
            self._publish(tmp, ref)
        except BaseException:
            self._discard(tmp)
            raise
        return ref

    def _open_temp(self, tmp: str) -> BinaryIO:
        try:
            if self._local:
                os.makedirs(os.path.dirname(tmp), exist_ok=True)
                return open(tmp, "xb")
            out: BinaryIO = self._fs.open(tmp, "wb")
            return out
        except OSError as err:
            raise ArtifactError(
                f"Cannot write to the artifact store at {self._url}: {err}. Make sure "
                f"{self._root} is a writable folder (every parent must be a folder too), or "
                "point the artifact store at another location."
            ) from err

    def _publish(self, tmp: str, ref: ArtifactRef) -> None:
        """Give the staged ``tmp`` its final name, unless a good-sized object already has it.

        An existing object whose size differs from ``ref.size`` is corrupt, and it is replaced:
        ``tmp`` was hashed as it was written, so its bytes are the truth for this digest;
        readers see either the old file (which their checksum rejects) or the new one, never a
        mix; and concurrent repairers all write identical bytes. Same-size corruption is not
        detected here (that would mean re-hashing on every put); reads still refuse it.
        """
        final = self._object_path(ref.digest)
        if not self._local:
            if self._stored_size(ref.digest) == ref.size:
                self._fs.rm(tmp)
            else:
                self._fs.mv(tmp, final)
            return
        os.chmod(tmp, 0o444)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        try:
            # link() fails if the name exists, so a present object is never replaced by a race.
            os.link(tmp, final)
        except FileExistsError:
            if os.stat(final).st_size != ref.size:
                os.replace(tmp, final)
        except OSError:
            # This filesystem has no hard links: fall back to rename, which may replace an
            # identical object written meanwhile by another process - harmless.
            if self._stored_size(ref.digest) != ref.size:
                os.replace(tmp, final)
        self._discard(tmp)

    def _discard(self, tmp: str) -> None:
        try:
            if self._local:
                os.unlink(tmp)
            else:
                self._fs.rm(tmp)
        except OSError:
            # Already gone, or storage is failing too: a leftover under tmp/ is invisible to
            # readers, and the error that brought us here is the one worth raising.
            pass

    # -- reading ----------------------------------------------------------------------------

    def get_bytes(self, digest: str) -> bytes:
        """Return the content of ``digest``, verified.

        Raises:
            ArtifactNotFoundError: No such artifact.
            ArtifactCorruptedError: The stored bytes do not hash to ``digest``.
        """
        with self._open_object(digest) as f:
            data: bytes = f.read()
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise self._corrupted(digest, actual, len(data))
        return data

    def get_file(self, digest: str, dest: Path | str) -> Path:
        """Copy ``digest`` to ``dest`` (replacing it), streaming and verifying on the way.

        The bytes go to a temporary file next to ``dest`` that is renamed onto ``dest`` only
        once verified, so ``dest`` is never half-written, and a corrupt object leaves an
        existing ``dest`` untouched. Missing parent folders of ``dest`` are created.

        Raises:
            ArtifactNotFoundError: No such artifact.
            ArtifactCorruptedError: The stored bytes do not hash to ``digest``.
        """
        target = Path(dest)
        with self._open_object(digest) as src:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
            try:
                with tmp.open("xb") as out:
                    ref = copy_hashing(src, out)
                if ref.digest != digest:
                    raise self._corrupted(digest, ref.digest, ref.size)
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return target

    def open(self, digest: str) -> VerifyingReader:
        """Open ``digest`` for sequential reading, verified when the end is reached.

        See ``VerifyingReader`` for when the check runs. Use it in a ``with`` block.

        Raises:
            ArtifactNotFoundError: No such artifact.
        """
        return VerifyingReader(
            self._open_object(digest),
            digest,
            lambda actual, size: self._corrupted(digest, actual, size),
        )

    def verify(self, digest: str) -> None:
        """Re-hash the stored object in place; change nothing.

        Raises:
            ArtifactNotFoundError: No such artifact.
            ArtifactCorruptedError: The stored bytes do not hash to ``digest``.
        """
        with self._open_object(digest) as f:
            ref = copy_hashing(f)
        if ref.digest != digest:
            raise self._corrupted(digest, ref.digest, ref.size)

    def exists(self, digest: str) -> bool:
        """Whether an object is stored under ``digest`` (its content is not checked)."""
        return self._stored_size(check_digest(digest)) is not None

    def size(self, digest: str) -> int:
        """The stored size of ``digest`` in bytes (its content is not checked).

        Raises:
            ArtifactNotFoundError: No such artifact.
        """
        size = self._stored_size(check_digest(digest))
        if size is None:
            raise self._not_found(digest)
        return size

    def local_path(self, digest: str) -> Path | None:
        """The object's file when the store is a local folder, else ``None``.

        For zero-copy reads (memory-mapping, random access) by readers that trust the store:
        nothing verifies bytes read this way (call ``verify`` first if in doubt), and the file
        must not be modified.

        Raises:
            ArtifactNotFoundError: The store is local and has no such artifact.
        """
        check_digest(digest)
        if not self._local:
            return None
        if self._stored_size(digest) is None:
            raise self._not_found(digest)
        return Path(self._object_path(digest))

    def list(self) -> Iterator[str]:
        """Every stored digest, sorted. Stray files under ``objects/`` are ignored."""
        objects = f"{self._root}/objects"
        try:
            paths = self._fs.find(objects)
        except _ABSENT:
            paths = []
        # Later exists()/size() calls must see objects other processes add, not this listing.
        self._fs.invalidate_cache(objects)
        digests = set()
        for path in paths:
            head, _, tail = str(path).rpartition("/")
            digest = head.rpartition("/")[2] + tail
            if len(tail) == 62 and is_digest(digest):
                digests.add(digest)
        return iter(sorted(digests))

    # -- helpers ----------------------------------------------------------------------------

    def _object_path(self, digest: str) -> str:
        return f"{self._root}/objects/{digest[:2]}/{digest[2:]}"

    def _location(self, digest: str) -> str:
        path = self._object_path(digest)
        return path if self._local else str(self._fs.unstrip_protocol(path))

    def _stored_size(self, digest: str) -> int | None:
        try:
            return int(self._fs.size(self._object_path(digest)))
        except _ABSENT:
            return None

    def _open_object(self, digest: str) -> Any:
        path = self._object_path(check_digest(digest))
        try:
            return self._fs.open(path, "rb")
        except _ABSENT as err:
            raise self._not_found(digest) from err

    def _not_found(self, digest: str) -> ArtifactNotFoundError:
        return ArtifactNotFoundError(
            f"No artifact {digest} in the store at {self._url}. It was never stored here or was "
            "deleted: re-run the step that produced it (e.g. `conveyor run`), or check that the "
            "artifact store setting points at the right store."
        )

    def _corrupted(self, digest: str, actual: str, size: int) -> ArtifactCorruptedError:
        location = self._location(digest)
        delete = f"`rm -f '{location}'`" if self._local else f"delete {location}"
        return ArtifactCorruptedError(
            f"Artifact {digest} is corrupted: the object at {location} holds {size} bytes "
            f"whose sha256 is {actual}. Nothing was changed. Delete the object ({delete}) and "
            "re-create it by re-running the step that produced it (e.g. `conveyor run`)."
        )
