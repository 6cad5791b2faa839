"""The interface every data source implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from conveyor.data._duckdb import quote_identifier, sql_string
from conveyor.data.sources._redact import redact_config

if TYPE_CHECKING:
    import duckdb

__all__ = ["BaseSource", "quote_identifier", "sql_string"]

ConfigT = TypeVar("ConfigT")


class BaseSource(ABC, Generic[ConfigT]):
    """A named source of raw data that DuckDB can query as a table.

    A backend is built from its own spec model (``FileSource``, ``SqlSource``, ``HttpSource``);
    building it imports its optional driver, so a missing one fails early with
    ``BackendUnavailableError`` naming the extra to install. Building does no I/O otherwise.

    Invariants:
        - :meth:`register` never pulls the whole source into Python memory. Files are read by
          DuckDB itself, out of core, through a view; SQL results and HTTP records are staged
          in bounded batches to Parquet files in ``workdir`` and a view is put over them.
        - The view is named exactly :attr:`name` (quoted, so any name is safe) and replaces a
          previous one of that name. Views over staged files need ``workdir`` to outlive them.
        - Every failure raises ``SourceError`` whose message names the source, the file, URL or
          row at fault, and what to do about it. Secrets (header values, URL passwords) never
          appear in messages, logs or :meth:`lineage`.
        - Some errors in files can only surface when the view is consumed (a bad line at row
          9 million); wrap the consuming query in ``wrap_duckdb_errors(source.name)``.

    Attributes:
        name: The source's key in the spec, and the name of its table in DuckDB.
        config: The source's validated spec model.
        project_root: Folder that relative paths are resolved against.
    """

    def __init__(self, name: str, config: ConfigT, *, project_root: Path) -> None:
        if not name or any(char in name for char in "/\\\0") or name.startswith("."):
            raise ValueError(f"invalid source name {name!r}: it also names files in the workdir")
        self.name = name
        self.config = config
        self.project_root = Path(project_root)

    @abstractmethod
    def register(self, con: duckdb.DuckDBPyConnection, workdir: Path) -> None:
        """Make the source queryable in ``con`` as a view named exactly :attr:`name`.

        Args:
            con: The DuckDB connection to create the view in.
            workdir: An existing folder for staged files; it must outlive the view.

        Raises:
            SourceError: The source cannot be read.
        """

    def files(self) -> list[Path]:
        """The local files this source reads, sorted (empty for remote sources).

        Used for cache keys: when none of these changed, neither did the source.
        """
        return []

    def lineage(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The source's config for the dataset-version record, with secrets redacted.

        Args:
            raw: This source's mapping from the spec *before* environment expansion, so
                ``${TOKEN}`` stays a placeholder.

        Returns:
            A JSON-ready copy of ``raw`` in which URL passwords, and header or parameter values
            under secret-looking names (``Authorization``, ``Cookie``, ``X-Api-Key``, ...),
            are ``***`` unless they are a pure ``${VAR}`` reference.
        """
        return redact_config(raw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
