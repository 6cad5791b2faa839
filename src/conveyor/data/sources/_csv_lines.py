"""Finding the CSV line that confused DuckDB's dialect sniffer.

DuckDB's sniffer guesses the delimiter and quoting from a sample of the file. A bad line in
that sample does not always make it fail: it may settle on a single column holding whole lines
(a line with too many fields), or on no quoting at all (a quote that is never closed), and
then read wrong data without a word. When the sniffed dialect looks like one of those
fallbacks, this module reads the start of the file with Python's ``csv`` module to find the
line. Its reading is bounded (``MAX_LINES``) and happens only for such files.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["DELIMITERS", "BadLine", "find_bad_line"]

DELIMITERS: Final = (",", ";", "\t", "|")
MAX_LINES: Final = 100_000
SAMPLE_LINES: Final = 20_480  # DuckDB's default sample_size
_PREVIEW: Final = 120
_ENCODINGS: Final = {"utf-8": "utf-8", "utf8": "utf-8", "latin-1": "latin-1", "utf-16": "utf-16"}


@dataclass(frozen=True)
class BadLine:
    """A line that breaks the CSV format, and how."""

    path: str
    line: int
    problem: str
    text: str
    fix: str

    def describe(self, source_name: str) -> str:
        """The ``SourceError`` message for this line."""
        return (
            f"source {source_name!r}: reading failed (file {self.path}, line {self.line}): "
            f"{self.problem}: {self.text!r}; {self.fix}"
        )


def find_bad_line(
    path: str, options: Mapping[str, Any], *, only_if_quoted: bool = False
) -> BadLine | None:
    """The first line of ``path`` whose field count differs from the header's.

    A record that runs over several lines is an unclosed quote. The delimiter is the one in
    ``options`` or the candidate seen most often in the header. With ``only_if_quoted``, a
    file whose sample has no ``"`` at all is not scanned. Returns None when nothing is found
    or the file cannot be read.
    """
    import fsspec

    if options.get("header") is False or "skip" in options:
        return None  # the header's field count is unknown
    encoding = _ENCODINGS.get(str(options.get("encoding", "utf-8")).lower(), "utf-8")
    given = options.get("delim") or options.get("sep") or options.get("delimiter")
    try:
        with fsspec.open(path, "rb", compression="infer") as raw:
            text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
            header = text.readline()
            sample = list(itertools.islice(text, SAMPLE_LINES))
            if only_if_quoted and not any('"' in line for line in sample):
                return None
            delimiter = given if isinstance(given, str) else max(DELIMITERS, key=header.count)
            return _scan(path, header, itertools.chain(sample, text), delimiter)
    except (OSError, ValueError, csv.Error):
        return None


def _scan(path: str, header: str, lines: Iterable[str], delimiter: str) -> BadLine | None:
    expected = len(next(csv.reader([header], delimiter=delimiter), []))
    reader = csv.reader(lines, delimiter=delimiter)
    while reader.line_num < MAX_LINES:
        start = reader.line_num + 2  # the header is line 1
        record = next(reader, None)
        if record is None:
            return None
        if not record or len(record) == expected:
            continue
        shown = delimiter.join(record)
        shown = shown if len(shown) <= _PREVIEW else shown[:_PREVIEW] + "..."
        if any("\n" in field or "\r" in field for field in record):
            end = reader.line_num + 1
            runs = f"on to line {end}" if end > start else "to the end of the file"
            return BadLine(
                path,
                start,
                f"a quote opened on this line is never closed (the field runs {runs})",
                shown.splitlines()[0],
                "fix the quoting, or set `options: {quote: ''}` to read quotes as plain characters",
            )
        return BadLine(
            path,
            start,
            f"the line has {len(record)} fields where the header has {expected} "
            f"(delimiter {delimiter!r})",
            shown,
            "fix the line, or set `options: {null_padding: true}` to fill missing fields with "
            "NULL, or `options: {ignore_errors: true}` to skip bad lines",
        )
    return None
