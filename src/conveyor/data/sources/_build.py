"""Picking the backend class for a source's spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conveyor.data.sources._base import BaseSource
from conveyor.data.sources._file import FileTableSource
from conveyor.data.sources._http import HttpJsonSource
from conveyor.data.sources._sql import SqlTableSource
from conveyor.spec import FileSource, HttpSource, Source, SqlSource

__all__ = ["build_source"]


def build_source(name: str, config: Source, *, project_root: Path) -> BaseSource[Any]:
    """The source backend for ``config``, chosen by its ``type``.

    Args:
        name: The source's key in the spec; its table in DuckDB gets this name.
        config: The source's validated spec model.
        project_root: Folder that relative paths are resolved against.

    Raises:
        BackendUnavailableError: The backend's optional driver is not installed.
        SourceError: The config cannot be used (e.g. a malformed database URL).
    """
    if isinstance(config, FileSource):
        return FileTableSource(name, config, project_root=project_root)
    if isinstance(config, SqlSource):
        return SqlTableSource(name, config, project_root=project_root)
    if isinstance(config, HttpSource):
        return HttpJsonSource(name, config, project_root=project_root)
    raise TypeError(f"unknown source config {type(config).__name__} for source {name!r}")
