"""Turning DuckDB's errors into ``SourceError`` messages that name the file, line and fix."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from conveyor.data.sources._base import sql_string
from conveyor.errors import SourceError

__all__ = ["describe_duckdb_error", "reader_call", "wrap_duckdb_errors"]

_LINE: Final = re.compile(r"CSV Error on Line: (\d+)|at byte \d+ in line (\d+)")
_FILE_PATTERNS: Final = (
    re.compile(r"^\s*file = (.+?)\s*$", re.MULTILINE),
    re.compile(r"in file \"([^\"]+)\""),
    re.compile(r"file '([^']+)'", re.IGNORECASE),
    re.compile(r"file \"([^\"]+)\"", re.IGNORECASE),
)
_KIND_PREFIX: Final = re.compile(r"^[A-Za-z ]+ Error: ")
_SUMMARY_ENDS: Final = ("possible fix", "possible solution", "potential fix", "line 1:", "file = ")
_MAX_ORIGINAL_LINE: Final = 200
_MAX_FIXES: Final = 2
_OPTION_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CSV_ENCODING_FIX: Final = (
    "the file is not UTF-8 encoded; set its encoding under the source's `options:`, e.g. "
    "`options: {encoding: latin-1}` (DuckDB reads utf-8, utf-16 and latin-1; convert other "
    "encodings to UTF-8 first, e.g. `iconv -f cp1252 -t utf-8`)"
)
_UNSUPPORTED_ENCODING_FIX: Final = (
    "DuckDB reads utf-8, utf-16 and latin-1 without extensions; convert the file to UTF-8 "
    "first, e.g. `iconv -f cp1252 -t utf-8`"
)
_OPTION_FIX: Final = (
    "remove or rename it under the source's `options:` (the names are those of DuckDB's "
    "read_csv / read_parquet / read_json parameters)"
)
_JSON_ENCODING_FIX: Final = (
    "JSON files must be UTF-8: convert the file first, e.g. `iconv -f latin1 -t utf-8`"
)


@contextmanager
def wrap_duckdb_errors(source_name: str) -> Iterator[None]:
    """Turn a ``duckdb.Error`` raised inside the block into a ``SourceError``.

    DuckDB reads files lazily, so a bad line deep in a file surfaces only when a query consumes
    the source's view. Wrap that query::

        with wrap_duckdb_errors("flights"):
            con.execute('COPY (SELECT * FROM "flights") TO ...')

    The message names the source, the file and line when DuckDB reports them,
    DuckDB's reason, and a fix (an encoding, or the reader options DuckDB suggests).

    Raises:
        SourceError: From any ``duckdb.Error``, with the original as its cause.
    """
    import duckdb

    try:
        yield
    except duckdb.Error as err:
        raise SourceError(describe_duckdb_error(source_name, err)) from err


def describe_duckdb_error(source_name: str, err: BaseException) -> str:
    """The one-paragraph ``SourceError`` message for a DuckDB error while reading a source."""
    text = str(err).strip()
    where = []
    for pattern in _FILE_PATTERNS:
        if found := pattern.search(text):
            where.append(f"file {found.group(1)}")
            break
    if found := _LINE.search(text):
        where.append(f"line {found.group(1) or found.group(2)}")
    prefix = f"source {source_name!r}: reading failed" + (f" ({', '.join(where)})" if where else "")
    if "not utf-8 encoded" in text:
        return f"{prefix}: {_CSV_ENCODING_FIX}"
    if "does not support the encoding" in text:
        return f"{prefix}: {_summary(text.splitlines()[0])}; {_UNSUPPORTED_ENCODING_FIX}"
    message = f"{prefix}: {_summary(text)}"
    if "invalid UTF-8" in text:
        return f"{message}; {_JSON_ENCODING_FIX}"
    if "Invalid named parameter" in text:
        return f"{message}; {_OPTION_FIX}"
    fixes = _fixes(text)
    if fixes:
        return f"{message}; fix the data, or set reader options under `options:` ({fixes})"
    return f"{message}; fix the data or the source's `options:`"


def _summary(text: str) -> str:
    parts: list[str] = []
    for number, line in enumerate(text.splitlines()):
        line = line.strip()
        if number == 0:
            line = _KIND_PREFIX.sub("", line)
        if line.lower().startswith(_SUMMARY_ENDS):
            break
        if not line or _LINE.fullmatch(line):
            continue
        if line.startswith("Original Line:") and len(line) > _MAX_ORIGINAL_LINE:
            line = line[:_MAX_ORIGINAL_LINE] + "..."
        parts.append(line.rstrip("."))
    return "; ".join(parts) or text.splitlines()[0]


def _fixes(text: str) -> str:
    fixes = [
        line.strip().lstrip("* ").rstrip(".")
        for line in text.splitlines()
        if line.strip().startswith("* ")
    ]
    return "DuckDB suggests: " + "; ".join(fixes[:_MAX_FIXES]) if fixes else ""


def reader_call(
    source_name: str, function: str, paths: list[str] | str, options: Mapping[str, Any]
) -> str:
    """SQL calling a DuckDB reader (``read_csv`` ...) on ``paths`` with keyword ``options``.

    Option values become DuckDB literals: text, numbers, booleans, lists and mappings (as
    structs, e.g. ``columns: {id: BIGINT}``). Unknown option names are left for DuckDB to
    reject, which names the reader and the option.

    Raises:
        SourceError: An option name is not an identifier or a value has no SQL literal.
    """
    if isinstance(paths, str):
        arguments = [sql_string(paths)]
    else:
        arguments = ["[" + ", ".join(sql_string(path) for path in paths) + "]"]
    for key, value in options.items():
        if not _OPTION_NAME.match(key):
            raise SourceError(
                f"source {source_name!r}: option {key!r} is not a valid option name; use the "
                f"names of DuckDB's {function} parameters (letters, digits and _)"
            )
        try:
            arguments.append(f"{key} = {_literal(value)}")
        except ValueError as err:
            raise SourceError(f"source {source_name!r}: option {key!r}: {err}") from err
    return f"{function}({', '.join(arguments)})"


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        return sql_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{sql_string(str(key))}: {_literal(item)}" for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    raise ValueError(f"cannot pass a {type(value).__name__} to DuckDB; use text or numbers")
