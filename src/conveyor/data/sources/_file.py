"""Files read by DuckDB in place: CSV, Parquet, JSON and NDJSON, local or behind an fsspec URL."""

from __future__ import annotations

import glob
import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final

from conveyor.data.sources._base import BaseSource, quote_identifier
from conveyor.data.sources._csv_lines import DELIMITERS, find_bad_line
from conveyor.data.sources._duckdb import describe_duckdb_error, reader_call
from conveyor.errors import BackendUnavailableError, SourceError
from conveyor.spec import FileFormat, FileSource

if TYPE_CHECKING:
    import duckdb

__all__ = ["FileTableSource"]

_EXTENSIONS: Final = {
    ".csv": FileFormat.csv,
    ".tsv": FileFormat.csv,
    ".parquet": FileFormat.parquet,
    ".pq": FileFormat.parquet,
    ".json": FileFormat.json,
    ".ndjson": FileFormat.ndjson,
    ".jsonl": FileFormat.ndjson,
}
_COMPRESSIONS: Final = {".gz", ".gzip", ".zst", ".zstd"}
_READERS: Final = {
    FileFormat.csv: "read_csv",
    FileFormat.parquet: "read_parquet",
    FileFormat.json: "read_json",
    FileFormat.ndjson: "read_json",
}
# Spelled out so a malformed CSV line is an error rather than silently skipped or padded;
# the user's `options:` override these.
_DEFAULT_OPTIONS: Final[dict[FileFormat, dict[str, Any]]] = {
    FileFormat.csv: {"strict_mode": True, "ignore_errors": False},
    FileFormat.ndjson: {"format": "newline_delimited"},
}
_SNIFFING: Final = re.compile(r'Error when sniffing file "([^"]+)"')
_DELIMITER_OPTIONS: Final = frozenset({"delim", "sep", "delimiter", "columns"})
# Rows read at registration to catch a wrong format, encoding or option early.
_PROBE_ROWS: Final = 100
# Protocols whose fsspec implementation ships as one of our extras.
_EXTRAS: Final = {"s3": "s3", "s3a": "s3"}


class FileTableSource(BaseSource[FileSource]):
    """Files read by DuckDB (``read_csv``, ``read_parquet``, ``read_json``) through a view.

    ``path`` is relative to the project root (or absolute), may be a glob (``data/*.csv``,
    ``data/**/*.parquet``; the matches are read in sorted order), or an fsspec URL
    (``s3://bucket/*.parquet``, ``memory://...``), whose filesystem is registered with DuckDB.
    The format comes from the extension (``.csv``, ``.tsv``, ``.parquet``, ``.json``,
    ``.ndjson``, ``.jsonl``, optionally ``.gz``/``.zst`` compressed) unless ``format`` says.
    ``options`` are passed to the DuckDB reader as keyword arguments.

    Nothing is loaded at registration: the view reads the files when queried. Registration
    reads the first rows, so a wrong format, encoding or option fails there; an error further
    into a file (a malformed line at row 9 million) surfaces when the view is consumed, so
    consume it inside ``wrap_duckdb_errors(name)``. CSV is read in strict mode: a line with
    too many or too few fields is an error, not skipped.
    """

    def files(self) -> list[Path]:
        """The local files the path or glob matches, sorted; empty for a remote URL.

        Raises:
            SourceError: Nothing matches, or the path is a folder.
        """
        if self._protocol() is not None:
            return []
        return self._local_files()

    def register(self, con: duckdb.DuckDBPyConnection, workdir: Path) -> None:
        """Create a view named :attr:`name` that reads the files, and check its first rows.

        Raises:
            SourceError: No file matches, the format is unknown, an option is invalid, or the
                first rows cannot be read (with file, line and fix).
            BackendUnavailableError: The URL's fsspec implementation is not installed.
        """
        import duckdb

        protocol = self._protocol()
        if protocol is None:
            paths = [str(path) for path in self._local_files()]
        else:
            paths = self._remote_files(con, protocol)
        file_format = self._format(paths)
        options = {**_DEFAULT_OPTIONS.get(file_format, {}), **self.config.options}
        reader = reader_call(self.name, _READERS[file_format], paths, options)
        view = quote_identifier(self.name)
        try:
            con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {reader}")
            if file_format is FileFormat.csv:
                self._check_sniffed_dialect(con, paths, options)
            # count(COLUMNS(*)) makes DuckDB parse and convert every column of the probed rows;
            # count(*) alone would let it skip the conversions.
            con.execute(
                f"SELECT count(COLUMNS(*)) FROM (SELECT * FROM {view} LIMIT {_PROBE_ROWS})"
            ).fetchall()
        except duckdb.Error as err:
            con.execute(f"DROP VIEW IF EXISTS {view}")
            bad = None
            if file_format is FileFormat.csv and (sniffed := _SNIFFING.search(str(err))):
                bad = find_bad_line(sniffed.group(1), options)
            if bad is not None:
                raise SourceError(bad.describe(self.name)) from err
            raise SourceError(describe_duckdb_error(self.name, err)) from err
        except BaseException:
            con.execute(f"DROP VIEW IF EXISTS {view}")
            raise

    def _check_sniffed_dialect(
        self, con: duckdb.DuckDBPyConnection, paths: list[str], options: dict[str, Any]
    ) -> None:
        """Fail when the sniffer fell back to a dialect that hides a bad line.

        A line with too many fields can make it read whole lines as one column; a quote that
        is never closed can make it read quotes as plain characters. Either way DuckDB reads
        wrong data without an error, so look for the line ourselves.
        """
        import duckdb

        bad = None
        if not _DELIMITER_OPTIONS & set(options):
            columns = con.execute(f"DESCRIBE {quote_identifier(self.name)}").fetchall()
            if len(columns) == 1 and any(d in str(columns[0][0]) for d in DELIMITERS):
                bad = find_bad_line(paths[0], options)
        if bad is None and "quote" not in options:
            sniff = reader_call(self.name, "sniff_csv", paths[0], options)
            try:
                row = con.execute(f"SELECT Quote FROM {sniff}").fetchone()
            except duckdb.Error:
                row = None  # the reader accepted options that sniff_csv does not: skip
            if row is not None and row[0] in {"", "(empty)"}:
                bad = find_bad_line(paths[0], options, only_if_quoted=True)
        if bad is not None:
            raise SourceError(bad.describe(self.name))

    def _protocol(self) -> str | None:
        """The URL's protocol, or None for a local path (``file://`` URLs included)."""
        protocol, sep, _ = self.config.path.partition("://")
        if not sep or protocol == "file":
            return None
        return protocol

    def _local_files(self) -> list[Path]:
        given = self.config.path.removeprefix("file://")
        pattern = self.project_root / Path(given).expanduser()
        if _has_magic(given):
            matches = sorted(
                Path(match)
                for match in glob.glob(str(pattern), recursive=True)
                if Path(match).is_file()
            )
            if not matches:
                raise SourceError(
                    f"source {self.name!r}: no file matches {given!r} (relative to the project "
                    f"root {self.project_root}); check the pattern, or use an absolute path"
                )
            return matches
        if pattern.is_dir():
            raise SourceError(
                f"source {self.name!r}: {given!r} is a folder ({pattern}); give a file or a "
                f"glob such as '{given.rstrip('/')}/*.parquet'"
            )
        if not pattern.is_file():
            raise SourceError(
                f"source {self.name!r}: the file {given!r} does not exist (looked for "
                f"{pattern}, relative to the project root {self.project_root}); check the path"
            )
        return [pattern]

    def _remote_files(self, con: duckdb.DuckDBPyConnection, protocol: str) -> list[str]:
        import fsspec.core

        url = self.config.path
        try:
            fs, path = fsspec.core.url_to_fs(url)
        except ImportError as err:
            extra = _EXTRAS.get(protocol)
            fix = (
                f"pip install 'conveyor-ml[{extra}]'"
                if extra
                else f"install the fsspec implementation for '{protocol}://' ({err})"
            )
            raise BackendUnavailableError(
                f"source {self.name!r}: reading {url!r} needs the fsspec implementation for "
                f"'{protocol}://', which is not installed: {fix}"
            ) from err
        except ValueError as err:
            raise SourceError(
                f"source {self.name!r}: {url!r} is not a URL fsspec can open ({err}); use a "
                "local path, or a URL such as 's3://bucket/data/*.parquet'"
            ) from err
        try:
            if _has_magic(path):
                found = sorted(str(match) for match in fs.glob(path) if fs.isfile(match))
            else:
                found = [path] if fs.isfile(path) else []
        except OSError as err:
            raise SourceError(
                f"source {self.name!r}: cannot list {url!r}: {err}; check the URL and "
                "your credentials for it"
            ) from err
        if not found:
            raise SourceError(f"source {self.name!r}: no file matches {url!r}; check the URL")
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        if not set(protocols) & set(con.list_filesystems()):
            con.register_filesystem(fs)
        return [str(fs.unstrip_protocol(match)) for match in found]

    def _format(self, paths: list[str]) -> FileFormat:
        if self.config.format is not FileFormat.auto:
            return self.config.format
        formats = {_EXTENSIONS.get(_extension(path)) for path in paths}
        if len(formats) == 1 and (found := next(iter(formats))) is not None:
            return found
        unknown = sorted({_extension(path) or "(none)" for path in paths})
        raise SourceError(
            f"source {self.name!r}: cannot tell the format of {self.config.path!r} from its "
            f"file extensions ({', '.join(unknown)}); set `format:` to one of csv, parquet, "
            "json, ndjson"
        )


def _extension(path: str) -> str:
    suffixes = [suffix.lower() for suffix in PurePosixPath(path).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _has_magic(path: str) -> bool:
    return any(char in path for char in "*?[")
