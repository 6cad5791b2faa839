"""Choosing a backend from a URL, the public names, and import cost."""

from __future__ import annotations

import subprocess
import sys

import pytest

import conveyor.artifacts
from conveyor.artifacts import ArtifactStore
from conveyor.errors import ArtifactError, BackendUnavailableError


def test_exported_members() -> None:
    assert set(conveyor.artifacts.__all__) == {
        "CHUNK_SIZE",
        "ArtifactRef",
        "ArtifactStore",
        "VerifyingReader",
    }
    for name in conveyor.artifacts.__all__:
        assert getattr(conveyor.artifacts, name) is not None


def test_missing_s3_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import s3fs` fail, as on an install without the extra.
    monkeypatch.setitem(sys.modules, "s3fs", None)

    with pytest.raises(BackendUnavailableError, match=r"pip install 'conveyor-ml\[s3\]'") as err:
        ArtifactStore("s3://bucket/artifacts")

    assert "s3://bucket/artifacts" in str(err.value)


@pytest.mark.parametrize("url", ["", "nosuchprotocol://bucket/x"])
def test_unusable_url(url: str) -> None:
    with pytest.raises(ArtifactError, match="artifact store URL"):
        ArtifactStore(url)


def test_memory_store_url_and_repr() -> None:
    store = ArtifactStore("memory://conveyor-tests-url/store")

    assert store.url == "memory:///conveyor-tests-url/store"
    assert repr(store) == "ArtifactStore('memory:///conveyor-tests-url/store')"


def test_importing_the_package_does_not_import_fsspec() -> None:
    code = "import sys, conveyor.artifacts; print('fsspec' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout

    assert out.strip() == "False"
