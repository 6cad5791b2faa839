"""The report files of a stored monitoring run, on this machine.

A drift or quality run names its reports twice: ``summary["html"]`` is where the process that
stored it wrote the HTML page (the JSON file sits next to it, same name), and ``artifacts``
holds both files' sha256 digests in the artifact store. Another machine, or a cleaned
``reports/`` folder, has only the digests: :func:`run_report` copies the file back (verified)
under its original name.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

from conveyor.errors import RecordNotFoundError

if TYPE_CHECKING:
    from conveyor.artifacts import ArtifactStore
    from conveyor.store import MonitorRunRecord

__all__ = ["REPORT_FORMATS", "run_report"]

REPORT_FORMATS: Final = ("html", "json")
_CHUNK: Final = 1 << 20


def run_report(
    run: MonitorRunRecord, artifacts: ArtifactStore, folder: Path, *, fmt: str = "html"
) -> Path:
    """The run's ``fmt`` report as a local file, fetched into ``folder`` when it is missing.

    The file the run recorded is used when it is there with the stored digest; else the same
    name in ``folder`` (fetched earlier); else the artifact is copied there from the store.

    Args:
        run: A drift or quality monitoring run.
        artifacts: The artifact store the run's reports were put in.
        folder: Where missing reports go (``<project>/reports``).
        fmt: ``html`` or ``json``.

    Raises:
        ValueError: ``fmt`` is not a report format.
        RecordNotFoundError: The run has no stored report of that format.
        ArtifactNotFoundError: The artifact store lost it.
        ArtifactCorruptedError: The stored bytes do not match the digest.
    """
    if fmt not in REPORT_FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {REPORT_FORMATS}")
    digest = run.artifacts.get(fmt)
    if not digest:
        raise RecordNotFoundError(
            f"the {run.kind} monitoring run {run.id} ({run.created_at:%Y-%m-%d %H:%M} UTC) has "
            f"no {fmt} report in the artifact store (it was stored by an older version); the "
            "next run will have one"
        )
    recorded = run.summary.get("html")
    candidates: list[Path] = []
    if isinstance(recorded, str) and recorded:
        name = re.split(r"[\\/]", recorded)[-1].removesuffix(".html") + f".{fmt}"
        candidates.append(Path(recorded).with_name(name))
    else:
        name = f"{run.kind}-{run.created_at:%Y%m%dT%H%M%S%fZ}.{fmt}"
    target = folder / name
    candidates.append(target)
    for path in candidates:
        if _holds(path, digest):
            return path
    return artifacts.get_file(digest, target)


def _holds(path: Path, digest: str) -> bool:
    """Whether ``path`` is a file whose bytes hash to ``digest``."""
    try:
        with path.open("rb") as f:
            hashed = hashlib.sha256()
            while chunk := f.read(_CHUNK):
                hashed.update(chunk)
    except OSError:
        return False
    return hashed.hexdigest() == digest
