"""What only a local folder store promises: layout, permissions, processes, crashes."""

from __future__ import annotations

import errno
import hashlib
import importlib
import io
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from conveyor.artifacts import CHUNK_SIZE, ArtifactStore
from conveyor.errors import ArtifactError, ArtifactNotFoundError

WORKERS_DIR = str(Path(__file__).parent)


def test_layout_and_read_only_objects(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))

    ref = store.put_bytes(b"layout")

    path = tmp_path / "objects" / ref.digest[:2] / ref.digest[2:]
    assert path.read_bytes() == b"layout"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert store.local_path(ref.digest) == path
    assert os.listdir(tmp_path / "tmp") == []


def test_repaired_object_is_read_only_too(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    ref = store.put_bytes(b"good bytes")
    path = tmp_path / "objects" / ref.digest[:2] / ref.digest[2:]
    path.chmod(0o644)
    path.write_bytes(b"bad")

    store.put_bytes(b"good bytes")

    assert path.read_bytes() == b"good bytes"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_filesystem_without_hard_links_still_stores_dedups_and_repairs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: str, dst: str) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted", dst)

    monkeypatch.setattr(os, "link", no_links)
    store = ArtifactStore(str(tmp_path))
    data = os.urandom(CHUNK_SIZE + 1)
    ref = store.put_stream(io.BytesIO(data))
    path = tmp_path / "objects" / ref.digest[:2] / ref.digest[2:]
    inode = path.stat().st_ino

    assert store.put_stream(io.BytesIO(data)) == ref
    assert path.stat().st_ino == inode  # present content is not rewritten
    path.chmod(0o644)
    path.write_bytes(b"short")
    store.put_stream(io.BytesIO(data))
    assert store.get_bytes(ref.digest) == data
    assert os.listdir(tmp_path / "tmp") == []


def test_plain_path_file_url_and_relative_path_are_the_same_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ref = ArtifactStore("artifacts").put_bytes(b"one store")

    by_url = ArtifactStore(f"file://{tmp_path}/artifacts")
    by_path = ArtifactStore(str(tmp_path / "artifacts"))

    assert by_url.url == by_path.url == f"file://{tmp_path}/artifacts"
    assert by_url.get_bytes(ref.digest) == b"one store"
    assert by_path.local_path(ref.digest) == by_url.local_path(ref.digest)


def test_unwritable_root_names_the_path_and_the_fix(tmp_path: Path) -> None:
    # Tests may run as root, which ignores permission bits; a file where a folder should be
    # stops everyone.
    (tmp_path / "not-a-folder").write_text("oops")
    root = tmp_path / "not-a-folder" / "artifacts"
    store = ArtifactStore(str(root))

    with pytest.raises(ArtifactError, match="writable folder") as caught:
        store.put_bytes(b"nowhere to go")

    assert str(root) in str(caught.value)
    assert list(store.list()) == []
    assert not store.exists(hashlib.sha256(b"nowhere to go").hexdigest())
    with pytest.raises(ArtifactNotFoundError):
        store.get_bytes(hashlib.sha256(b"nowhere to go").hexdigest())


@pytest.mark.integration
def test_two_processes_storing_the_same_content_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(WORKERS_DIR)
    workers = importlib.import_module("artifact_workers")
    data = os.urandom(16 << 20)
    source = tmp_path / "same.bin"
    source.write_bytes(data)
    url = str(tmp_path / "store")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=workers.put_file_together, args=(url, str(source), start, results))
        for _ in range(2)
    ]

    for proc in procs:
        proc.start()
    digests = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)

    expected = hashlib.sha256(data).hexdigest()
    assert [proc.exitcode for proc in procs] == [0, 0]
    assert digests == [expected, expected]
    store = ArtifactStore(url)
    assert list(store.list()) == [expected]
    store.verify(expected)
    assert os.listdir(tmp_path / "store" / "tmp") == []


@pytest.mark.integration
def test_process_killed_mid_write_leaves_no_visible_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(WORKERS_DIR)
    workers = importlib.import_module("artifact_workers")
    url = str(tmp_path / "store")
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    proc = ctx.Process(target=workers.put_until_killed, args=(url, started))
    proc.start()
    try:
        assert started.wait(timeout=60), "the writer never got going"
    finally:
        proc.kill()
        proc.join(timeout=60)

    store = ArtifactStore(url)
    assert list(store.list()) == []
    assert not (tmp_path / "store" / "objects").exists()
    # The partial write existed, but only under tmp/, where no reader looks.
    assert [name.endswith(".part") for name in os.listdir(tmp_path / "store" / "tmp")] == [True]
    assert store.put_bytes(b"still usable").size == 12
