"""Data sources: files (read by DuckDB in place), SQL queries and paginated HTTP JSON APIs.

Each source becomes a DuckDB view named after it, without pulling the data into Python:

>>> source = build_source("flights", spec.sources["flights"], project_root=root)  # doctest: +SKIP
>>> source.register(con, workdir)  # doctest: +SKIP
>>> with wrap_duckdb_errors("flights"):  # doctest: +SKIP
...     con.execute('SELECT count(*) FROM "flights"').fetchall()

Errors are :class:`conveyor.errors.SourceError` (naming the source, the file, URL or row, and
a fix), or :class:`conveyor.errors.BackendUnavailableError` for a missing optional driver.
"""

from conveyor.data.sources._base import BaseSource
from conveyor.data.sources._build import build_source
from conveyor.data.sources._duckdb import wrap_duckdb_errors
from conveyor.data.sources._file import FileTableSource
from conveyor.data.sources._http import HttpJsonSource
from conveyor.data.sources._sql import SqlTableSource

__all__ = [
    "BaseSource",
    "FileTableSource",
    "HttpJsonSource",
    "SqlTableSource",
    "build_source",
    "wrap_duckdb_errors",
]
