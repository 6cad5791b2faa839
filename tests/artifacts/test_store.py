"""The artifact store's contract, run on every backend (see ``conftest.backend``)."""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conveyor.artifacts import CHUNK_SIZE, ArtifactRef, ArtifactStore
from conveyor.errors import ArtifactCorruptedError, ArtifactError, ArtifactNotFoundError

if TYPE_CHECKING:
    # Only for annotations: test modules are not importable packages under every import mode.
    from .conftest import Backend

BIG = 5 * CHUNK_SIZE + 123  # several chunks and a ragged tail


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def corrupt_same_size(backend: Backend, digest: str) -> bytes:
    """Flip one byte of the stored object; return the damaged bytes."""
    good = backend.read_raw(digest)
    bad = bytes([good[0] ^ 0xFF]) + good[1:]
    backend.write_raw(digest, bad)
    return bad


class TrickleStream:
    """A non-seekable stream that returns fewer bytes than asked, then fails if told to."""

    def __init__(self, data: bytes, step: int, fail_after: int | None = None) -> None:
        self._data = data
        self._step = step
        self._pos = 0
        self._fail_after = fail_after

    def read(self, size: int, /) -> bytes:
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise OSError("connection reset while reading the source")
        chunk = self._data[self._pos : self._pos + min(size, self._step)]
        self._pos += len(chunk)
        return chunk


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"x", b"hello artifact\n" * 1000])
def test_put_bytes_round_trip(store: ArtifactStore, data: bytes) -> None:
    ref = store.put_bytes(data)

    assert ref == ArtifactRef(sha(data), len(data))
    assert store.get_bytes(ref.digest) == data
    assert store.exists(ref.digest)
    assert store.size(ref.digest) == len(data)


def test_put_file_and_get_file_round_trip_larger_than_a_chunk(
    store: ArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(BIG)
    source = tmp_path / "model.bin"
    source.write_bytes(data)

    ref = store.put_file(source)
    dest = store.get_file(ref.digest, tmp_path / "out" / "model-copy.bin")

    assert ref == ArtifactRef(sha(data), BIG)
    assert dest == tmp_path / "out" / "model-copy.bin"
    assert dest.read_bytes() == data
    assert store.get_bytes(ref.digest) == data
    store.verify(ref.digest)
    # Nothing but the destination is left next to it (the temporary file was renamed).
    assert os.listdir(dest.parent) == ["model-copy.bin"]


def test_get_file_replaces_an_existing_destination(store: ArtifactStore, tmp_path: Path) -> None:
    ref = store.put_bytes(b"new contents")
    dest = tmp_path / "data.parquet"
    dest.write_bytes(b"old contents that are longer")

    store.get_file(str(ref.digest), str(dest))

    assert dest.read_bytes() == b"new contents"


def test_put_stream_reads_until_the_end_of_a_trickling_stream(store: ArtifactStore) -> None:
    data = os.urandom(CHUNK_SIZE + 10)

    ref = store.put_stream(TrickleStream(data, step=4099))

    assert ref == ArtifactRef(sha(data), len(data))
    assert store.get_bytes(ref.digest) == data


def test_open_streams_verified_bytes(store: ArtifactStore) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 7)
    ref = store.put_bytes(data)

    with store.open(ref.digest) as f:
        head = f.read(10)
        rest = f.read()
    chunks: list[bytes] = []
    with store.open(ref.digest) as f:
        while chunk := f.read(65536):
            chunks.append(chunk)

    assert head + rest == data
    assert b"".join(chunks) == data
    assert f.closed


def test_open_supports_readinto(store: ArtifactStore) -> None:
    ref = store.put_bytes(b"0123456789")
    buffer = bytearray(4)

    with store.open(ref.digest) as f:
        assert f.readinto(buffer) == 4
        assert bytes(buffer) == b"0123"
        assert f.read() == b"456789"


# -- dedup, listing, metadata ----------------------------------------------------------------


@pytest.mark.parametrize("how", ["bytes", "file", "stream"])
def test_storing_present_content_again_does_not_rewrite_it(
    backend: Backend, tmp_path: Path, how: str
) -> None:
    data = os.urandom(CHUNK_SIZE + 1)
    ref = backend.store.put_bytes(data)
    before = backend.info(ref.digest)
    source = tmp_path / "again.bin"
    source.write_bytes(data)
    put: dict[str, Callable[[], ArtifactRef]] = {
        "bytes": lambda: backend.store.put_bytes(data),
        "file": lambda: backend.store.put_file(source),
        "stream": lambda: backend.store.put_stream(TrickleStream(data, step=CHUNK_SIZE)),
    }

    again = put[how]()

    assert again == ref
    assert backend.info(ref.digest) == before  # same inode and mtime when local
    assert list(backend.store.list()) == [ref.digest]
    assert backend.temp_entries() == []


def test_list_is_sorted_and_starts_empty(store: ArtifactStore) -> None:
    assert list(store.list()) == []

    digests = [store.put_bytes(f"artifact {i}".encode()).digest for i in range(25)]

    assert list(store.list()) == sorted(digests)


def test_list_ignores_stray_files(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"real")
    backend.fs.makedirs(f"{backend.root}/objects/ab", exist_ok=True)
    backend.fs.pipe_file(f"{backend.root}/objects/ab/not-a-digest", b"junk")
    backend.fs.pipe_file(f"{backend.root}/objects/README", b"junk")

    assert list(backend.store.list()) == [ref.digest]


def test_exists_and_size_of_missing_and_present(store: ArtifactStore) -> None:
    digest = sha(b"later")
    assert not store.exists(digest)

    store.put_bytes(b"later")

    assert store.exists(digest)
    assert store.size(digest) == 5


def test_store_survives_pickling(store: ArtifactStore) -> None:
    ref = store.put_bytes(b"shared with a worker")

    copy = pickle.loads(pickle.dumps(store))

    assert copy.url == store.url
    assert copy.get_bytes(ref.digest) == b"shared with a worker"


def test_local_path_only_for_local_folders(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"mmap me")

    path = backend.store.local_path(ref.digest)

    if backend.name == "local":
        assert path == Path(backend.object_path(ref.digest))
        assert path.read_bytes() == b"mmap me"
    else:
        assert path is None


# -- corruption ------------------------------------------------------------------------------


def open_and_stop_early(store: ArtifactStore, digest: str) -> None:
    with store.open(digest) as f:
        f.read(10)


def reads(store: ArtifactStore, digest: str, tmp_path: Path) -> dict[str, Callable[[], Any]]:
    return {
        "get_bytes": lambda: store.get_bytes(digest),
        "get_file": lambda: store.get_file(digest, tmp_path / "dest.bin"),
        "verify": lambda: store.verify(digest),
        "open-read-all": lambda: store.open(digest).read(),
        "open-close-early": lambda: open_and_stop_early(store, digest),
    }


@pytest.mark.parametrize(
    "read", ["get_bytes", "get_file", "verify", "open-read-all", "open-close-early"]
)
def test_corrupt_object_raises_a_clear_error_and_is_left_as_is(
    backend: Backend, tmp_path: Path, read: str
) -> None:
    ref = backend.store.put_bytes(os.urandom(3 * CHUNK_SIZE))
    bad = corrupt_same_size(backend, ref.digest)
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(ArtifactCorruptedError) as caught:
        reads(backend.store, ref.digest, out)[read]()

    message = str(caught.value)
    assert ref.digest in message
    assert backend.object_path(ref.digest) in message
    assert sha(bad) in message
    assert "Delete the object" in message
    assert "conveyor run" in message
    assert backend.read_raw(ref.digest) == bad
    assert backend.store.exists(ref.digest)
    assert os.listdir(out) == []  # get_file removed its temporary file


def test_get_file_on_corruption_leaves_the_existing_destination_untouched(
    backend: Backend, tmp_path: Path
) -> None:
    ref = backend.store.put_bytes(os.urandom(CHUNK_SIZE + 5))
    corrupt_same_size(backend, ref.digest)
    dest = tmp_path / "out" / "model.onnx"
    dest.parent.mkdir()
    dest.write_bytes(b"the previous model")

    with pytest.raises(ArtifactCorruptedError):
        backend.store.get_file(ref.digest, dest)

    assert dest.read_bytes() == b"the previous model"
    assert os.listdir(dest.parent) == ["model.onnx"]


def test_error_inside_open_block_propagates_unchanged(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"some rows")
    corrupt_same_size(backend, ref.digest)

    with pytest.raises(KeyError), backend.store.open(ref.digest) as f:
        f.read(2)
        raise KeyError("the caller's own problem")


@pytest.mark.parametrize("damage", [b"", b"truncated", b"longer than the original content"])
def test_put_repairs_a_corrupt_object_of_the_wrong_size(backend: Backend, damage: bytes) -> None:
    data = b"the original content"
    ref = backend.store.put_bytes(data)
    backend.write_raw(ref.digest, damage)

    assert backend.store.put_bytes(data) == ref

    assert backend.store.get_bytes(ref.digest) == data
    assert backend.temp_entries() == []


def test_put_stream_repairs_a_corrupt_object_of_the_wrong_size(backend: Backend) -> None:
    data = os.urandom(CHUNK_SIZE + 3)
    ref = backend.store.put_bytes(data)
    backend.write_raw(ref.digest, data[:100])

    backend.store.put_stream(TrickleStream(data, step=CHUNK_SIZE))

    backend.store.verify(ref.digest)


def test_put_does_not_rehash_a_same_size_object(backend: Backend) -> None:
    """Puts compare sizes only (re-hashing every put costs a full read); reads still refuse."""
    ref = backend.store.put_bytes(b"same size")
    bad = corrupt_same_size(backend, ref.digest)

    backend.store.put_bytes(b"same size")

    assert backend.read_raw(ref.digest) == bad
    with pytest.raises(ArtifactCorruptedError):
        backend.store.get_bytes(ref.digest)


# -- bad input and missing objects -------------------------------------------------------------

GOOD = sha(b"good")
INVALID_DIGESTS = [
    "",
    "abc123",
    GOOD[:-1],
    GOOD + "0",
    GOOD.upper(),
    GOOD[:-1] + "g",
    GOOD + "\n",
    "../" + GOOD[3:],
    "..%2F" + GOOD[5:],
    GOOD[:2] + "/" + GOOD[3:],
]


@pytest.mark.parametrize("digest", INVALID_DIGESTS)
@pytest.mark.parametrize(
    "call", ["get_bytes", "get_file", "open", "verify", "exists", "size", "local_path"]
)
def test_invalid_digest_is_refused_before_touching_storage(
    backend: Backend, tmp_path: Path, digest: str, call: str
) -> None:
    store = backend.store
    calls: dict[str, Callable[[], Any]] = {
        "get_bytes": lambda: store.get_bytes(digest),
        "get_file": lambda: store.get_file(digest, tmp_path / "dest"),
        "open": lambda: store.open(digest),
        "verify": lambda: store.verify(digest),
        "exists": lambda: store.exists(digest),
        "size": lambda: store.size(digest),
        "local_path": lambda: store.local_path(digest),
    }

    with pytest.raises(ArtifactError, match="64 lowercase hexadecimal") as caught:
        calls[call]()

    assert type(caught.value) is ArtifactError
    assert not backend.fs.exists(backend.root)
    assert os.listdir(tmp_path) == []


def test_artifact_ref_validates_its_fields() -> None:
    with pytest.raises(ArtifactError, match="64 lowercase hexadecimal"):
        ArtifactRef("../etc/passwd", 1)
    with pytest.raises(ArtifactError, match="non-negative"):
        ArtifactRef(GOOD, -1)


@pytest.mark.parametrize("call", ["get_bytes", "get_file", "open", "verify", "size"])
def test_missing_artifact_names_digest_and_store(
    store: ArtifactStore, tmp_path: Path, call: str
) -> None:
    store.put_bytes(b"something else")
    calls: dict[str, Callable[[], Any]] = {
        "get_bytes": lambda: store.get_bytes(GOOD),
        "get_file": lambda: store.get_file(GOOD, tmp_path / "dest"),
        "open": lambda: store.open(GOOD),
        "verify": lambda: store.verify(GOOD),
        "size": lambda: store.size(GOOD),
    }

    with pytest.raises(ArtifactNotFoundError) as caught:
        calls[call]()

    assert GOOD in str(caught.value)
    assert store.url in str(caught.value)
    assert not (tmp_path / "dest").exists()


def test_local_path_of_missing_artifact(backend: Backend) -> None:
    if backend.name == "local":
        with pytest.raises(ArtifactNotFoundError, match=GOOD):
            backend.store.local_path(GOOD)
    else:
        assert backend.store.local_path(GOOD) is None


# -- atomicity and concurrency -----------------------------------------------------------------


def test_put_interrupted_mid_write_leaves_no_object_and_no_temp(backend: Backend) -> None:
    data = os.urandom(3 * CHUNK_SIZE)
    stream = TrickleStream(data, step=CHUNK_SIZE // 2, fail_after=2 * CHUNK_SIZE + 5)

    with pytest.raises(OSError, match="connection reset"):
        backend.store.put_stream(stream)

    assert list(backend.store.list()) == []
    assert not backend.store.exists(sha(data))
    assert backend.temp_entries() == []


@pytest.mark.parametrize("how", ["bytes", "file"])
def test_threads_storing_the_same_content_at_once(
    backend: Backend, tmp_path: Path, how: str
) -> None:
    data = os.urandom(3 * CHUNK_SIZE)
    source = tmp_path / "same.bin"
    source.write_bytes(data)
    workers = 8
    start = threading.Barrier(workers)

    def put(_: int) -> ArtifactRef:
        start.wait(timeout=30)
        if how == "bytes":
            return backend.store.put_bytes(data)
        return backend.store.put_file(source)

    with ThreadPoolExecutor(workers) as pool:
        refs = list(pool.map(put, range(workers)))

    assert refs == [ArtifactRef(sha(data), len(data))] * workers
    assert list(backend.store.list()) == [sha(data)]
    backend.store.verify(sha(data))
    assert backend.temp_entries() == []
