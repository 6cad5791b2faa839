"""Bad URLs and unusable backends fail with errors that say what to do."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conveyor.errors import BackendUnavailableError, StoreError
from conveyor.store import MetadataStore


def test_sqlite_folder_under_a_regular_file_is_unavailable(tmp_path: Path) -> None:
    # A file where a folder should be defeats even root, who ignores permission bits.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(BackendUnavailableError, match="cannot create the folder") as info:
        MetadataStore(f"sqlite:///{blocker / '.conveyor' / 'conveyor.db'}")
    assert str(blocker / ".conveyor") in str(info.value)


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root ignores permission bits"
)
def test_sqlite_read_only_folder_is_unavailable(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(BackendUnavailableError, match="not writable") as info:
            MetadataStore(f"sqlite:///{folder / 'conveyor.db'}")
    finally:
        folder.chmod(0o700)
    assert str(folder) in str(info.value) and "chmod" in str(info.value)


def test_sqlite_path_that_is_a_folder_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="not a readable and writable file"):
        MetadataStore(f"sqlite:///{tmp_path}")


def test_sqlite_creates_missing_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / ".conveyor" / "conveyor.db"
    with MetadataStore(f"sqlite:///{path}") as store:
        assert store.list_runs() == []
    assert path.is_file()


def test_unreachable_postgres_names_the_url_without_its_password() -> None:
    url = "postgresql+psycopg://conveyor:hunter2-secret@127.0.0.1:1/metadata"
    with pytest.raises(BackendUnavailableError) as info:
        MetadataStore(url)
    message = str(info.value)
    assert "hunter2-secret" not in message
    assert "postgresql+psycopg://conveyor:***@127.0.0.1:1/metadata" in message


def test_missing_postgres_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` fail
    with pytest.raises(BackendUnavailableError, match=r"pip install 'conveyor-ml\[postgres\]'"):
        MetadataStore("postgresql://conveyor:pw@127.0.0.1:5432/metadata")


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("mysql://root:pw@localhost/db", "unsupported metadata store backend 'mysql'"),
        ("sqlite://", "needs a database file"),
        ("sqlite:///:memory:", "needs a database file"),
        ("not a url at all", "invalid metadata store URL"),
    ],
)
def test_unsupported_urls_are_rejected(url: str, match: str) -> None:
    with pytest.raises(StoreError, match=match) as info:
        MetadataStore(url)
    assert "pw@" not in str(info.value)
