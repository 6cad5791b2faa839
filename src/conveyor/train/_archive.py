"""A model folder as one deterministic archive: what the artifact store keeps and hashes."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from conveyor.errors import TrainingError

__all__ = ["pack_model", "unpack_model"]


def pack_model(folder: Path) -> bytes:
    """The files of ``folder`` as an uncompressed tar with fixed metadata.

    Entries are sorted and carry no owner, mode or time of their own, so the same files give
    the same bytes, and the archive's sha256 identifies the model (registry tag
    ``conveyor.model_sha256``).
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            info = tarfile.TarInfo(path.relative_to(folder).as_posix())
            data = path.read_bytes()
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpack_model(data: bytes, folder: Path) -> Path:
    """Extract an archive made by :func:`pack_model` into ``folder`` (created) and return it.

    Raises:
        TrainingError: ``data`` is not such an archive, or an entry would escape ``folder``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            archive.extractall(folder, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise TrainingError(f"the model archive cannot be read: {err}") from err
    return folder
