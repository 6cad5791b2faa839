"""DuckDB connections with bounded memory: big inputs spill to disk instead of growing RSS."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__all__ = ["DEFAULT_MEMORY_LIMIT", "connect", "quote_identifier", "sql_string"]

#: DuckDB's own default is 80 % of RAM; a data step should be bounded by its batch size, not
#: the machine. Joins, aggregates and sorts beyond this spill to the connection's temp folder.
DEFAULT_MEMORY_LIMIT = "512MB"


def connect(workdir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose memory is capped (``CONVEYOR_DUCKDB_MEMORY``).

    Args:
        workdir: Where spilled data goes (a ``duckdb-tmp`` folder in it); default: a temp folder.
    """
    import duckdb

    spill = (workdir or Path(tempfile.gettempdir())) / "duckdb-tmp"
    spill.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(
        config={
            "memory_limit": os.environ.get("CONVEYOR_DUCKDB_MEMORY", DEFAULT_MEMORY_LIMIT),
            "temp_directory": str(spill),
        }
    )


def quote_identifier(name: str) -> str:
    """``name`` as a double-quoted SQL identifier (``a"b`` → ``"a""b"``), safe for any name."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(text: str | Path) -> str:
    """``text`` as a single-quoted SQL string literal (file paths in ``read_parquet(...)``)."""
    return "'" + str(text).replace("'", "''") + "'"
