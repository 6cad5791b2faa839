"""The result of a query against any SQLAlchemy database, staged to Parquet in batches.

DuckDB's own ``postgres``/``mysql`` scanners would read the database directly, but installing
DuckDB extensions needs the network (and they only cover a few databases); SQLAlchemy reaches
any database through the driver the user already has, with a server-side cursor where the
driver supports one.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from conveyor.data.sources._arrow import ColumnTypeError, RowColumns, postgres_kind
from conveyor.data.sources._base import BaseSource, quote_identifier, sql_string
from conveyor.data.sources._duckdb import wrap_duckdb_errors
from conveyor.data.sources._redact import redact_url, scrub
from conveyor.errors import BackendUnavailableError, SourceError
from conveyor.spec import SqlSource

if TYPE_CHECKING:
    import duckdb
    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine import URL

__all__ = ["SqlTableSource"]

DEFAULT_BATCH_SIZE: Final = 10_000
_CONNECT_TIMEOUT_S: Final = 10
# Drivers that take libpq's connect_timeout keyword.
_LIBPQ_DRIVERS: Final = {"psycopg", "psycopg2"}
_URL_EXAMPLE: Final = "postgresql+psycopg://user:${DB_PASSWORD}@host:5432/db or sqlite:///data.db"
_MAX_DB_MESSAGE: Final = 500
_EXCERPT: Final = re.compile(r"^LINE \d+:")


class SqlTableSource(BaseSource[SqlSource]):
    """A SQL query run by the database, its result staged to ``workdir/<name>.parquet``.

    Rows are streamed (``stream_results`` and ``yield_per``: a server-side cursor on
    PostgreSQL) in batches of ``batch_size`` rows, each written to the Parquet file as one row
    group, so memory stays bounded whatever the result's size; then a view is put over the file.
    Column types are kept (see :mod:`conveyor.data.sources._arrow`: ints stay int64, timestamps
    stay timestamps, NUMERIC becomes float64, NULLs stay NULL); a column that is NULL in the
    whole first batch takes the type the driver declares (PostgreSQL) or text. An empty result
    gives an empty table with the query's columns. The query text goes to the driver as it is:
    ``:name`` is not a bind parameter, and ``%`` needs no escaping.

    A relative SQLite path (``sqlite:///data/app.db``) is relative to the project root.
    Connections are not pooled: each :meth:`register` opens one and closes it.
    """

    def __init__(
        self,
        name: str,
        config: SqlSource,
        *,
        project_root: Path,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        """Build the engine, importing the database driver (no connection is made yet).

        Raises:
            SourceError: The URL is malformed.
            BackendUnavailableError: The URL's dialect or driver is not installed.
        """
        super().__init__(name, config, project_root=project_root)
        self.batch_size = batch_size
        self._engine = self._build_engine()

    def register(self, con: duckdb.DuckDBPyConnection, workdir: Path) -> None:
        """Run the query, stage its rows to ``workdir/<name>.parquet`` and create the view.

        Raises:
            SourceError: The database cannot be reached, the query fails, or a column's values
                do not share one type.
        """
        target = workdir / f"{self.name}.parquet"
        staging = workdir / f".{self.name}.{uuid.uuid4().hex}.parquet.tmp"
        try:
            self._stage(staging)
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
        with wrap_duckdb_errors(self.name):
            con.execute(
                f"CREATE OR REPLACE VIEW {quote_identifier(self.name)} AS "
                f"SELECT * FROM read_parquet({sql_string(target)})"
            )

    def _build_engine(self) -> Engine:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError
        from sqlalchemy.pool import NullPool

        try:
            url = make_url(self.config.url)
        except ArgumentError as err:
            raise SourceError(
                f"source {self.name!r}: {self._url()!r} is not a database URL; use a "
                f"SQLAlchemy URL such as {_URL_EXAMPLE}"
            ) from err
        url = self._relative_to_project(url)
        connect_args: dict[str, Any] = {}
        if url.get_backend_name() == "postgresql" and url.get_driver_name() in _LIBPQ_DRIVERS:
            connect_args["connect_timeout"] = _CONNECT_TIMEOUT_S
        try:
            return create_engine(url, poolclass=NullPool, connect_args=connect_args)
        except NoSuchModuleError as err:
            raise BackendUnavailableError(
                f"source {self.name!r}: SQLAlchemy has no dialect for {url.drivername!r} in "
                f"{self._url()!r}; fix the URL's scheme, or install the dialect's package "
                f"(e.g. snowflake-sqlalchemy for snowflake://)"
            ) from err
        except ImportError as err:
            raise BackendUnavailableError(
                f"source {self.name!r}: the database driver for {self._url()!r} is not "
                f"installed ({err}); {_install_hint(url, err)}"
            ) from err

    def _relative_to_project(self, url: URL) -> URL:
        database = url.database
        if (
            url.get_backend_name() == "sqlite"
            and database
            and database != ":memory:"
            and not database.startswith("file:")
            and not Path(database).expanduser().is_absolute()
        ):
            return url.set(database=str(self.project_root / database))
        return url

    def _stage(self, path: Path) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            connection = self._engine.connect()
        except SQLAlchemyError as err:
            raise SourceError(
                f"source {self.name!r}: cannot connect to {self._url()!r}: "
                f"{self._db_message(err)}; check that the database is running and reachable "
                "and that the URL and credentials are right"
            ) from err
        with connection:
            try:
                self._stream(connection, path)
            except ColumnTypeError as err:
                raise SourceError(
                    f"source {self.name!r}: {err}; CAST the column in the query so every row "
                    "has one type"
                ) from err
            except SQLAlchemyError as err:
                raise SourceError(
                    f"source {self.name!r}: the query failed on {self._url()!r}: "
                    f"{self._db_message(err)}; fix the `query:` in conveyor.yaml"
                ) from err

    def _stream(self, connection: Connection, path: Path) -> None:
        import pyarrow.parquet as pq
        from sqlalchemy import text

        # Escaped colons stop SQLAlchemy from reading ":name" as a bind parameter; text() also
        # doubles "%" for drivers whose paramstyle needs it.
        statement = text(self.config.query.replace(":", r"\:"))
        result = connection.execution_options(
            stream_results=True, yield_per=self.batch_size
        ).execute(statement)
        if not result.returns_rows:
            raise SourceError(
                f"source {self.name!r}: the query returns no rows to read (is it a SELECT?); "
                "fix the `query:` in conveyor.yaml"
            )
        names = [str(name) for name in result.keys()]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise SourceError(
                f"source {self.name!r}: the query returns several columns named "
                f"{', '.join(duplicates)}; give them distinct aliases (SELECT a.id AS a_id, ...)"
            )
        columns = RowColumns(names, self._hints(connection, result.cursor.description))
        writer = None
        try:
            for rows in result.partitions(self.batch_size):
                batch = columns.batch(rows)
                if writer is None:
                    writer = pq.ParquetWriter(path, batch.schema)
                writer.write_batch(batch)
            if writer is None:
                writer = pq.ParquetWriter(path, columns.schema([]))
        finally:
            if writer is not None:
                writer.close()

    @staticmethod
    def _hints(connection: Connection, description: Sequence[Any] | None) -> list[str | None]:
        """Each column's kind as the driver declares it, for columns without values."""
        if not description:
            return []
        if connection.dialect.name == "postgresql":
            return [postgres_kind(column[1]) for column in description]
        # PEP 249's NUMBER type object compares equal to every numeric type code.
        number = getattr(connection.dialect.dbapi, "NUMBER", None)
        return [
            "float"
            if number is not None and column[1] is not None and number == column[1]
            else None
            for column in description
        ]

    def _url(self) -> str:
        return redact_url(self.config.url)

    def _db_message(self, err: BaseException) -> str:
        cause = getattr(err, "orig", None) or err
        lines = [line.strip() for line in str(cause).splitlines()]
        # Drop PostgreSQL's "LINE 1: ..." excerpt and its caret: with a server-side cursor it
        # quotes the DECLARE wrapped around the user's query, which only confuses.
        message = "; ".join(
            line for line in lines if line and set(line) != {"^"} and not _EXCERPT.match(line)
        )
        if len(message) > _MAX_DB_MESSAGE:
            message = message[:_MAX_DB_MESSAGE] + "..."
        return scrub(message, self._secrets())

    def _secrets(self) -> list[str]:
        from sqlalchemy.engine import make_url

        password = make_url(self.config.url).password
        return [str(password)] if password else []


def _install_hint(url: URL, err: ImportError) -> str:
    if url.get_backend_name() == "postgresql":
        if url.get_driver_name() == "psycopg":
            return "pip install 'conveyor-ml[postgres]'"
        return (
            f"pip install {err.name or url.get_driver_name()}, or use postgresql+psycopg:// "
            "and pip install 'conveyor-ml[postgres]'"
        )
    return f"pip install {err.name or url.get_driver_name()}"
