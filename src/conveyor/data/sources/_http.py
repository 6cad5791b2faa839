"""JSON records from a paginated HTTP API, staged to Parquet in batches."""

from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit

from conveyor.data.sources._arrow import records_table
from conveyor.data.sources._base import BaseSource, quote_identifier, sql_string
from conveyor.data.sources._duckdb import wrap_duckdb_errors
from conveyor.data.sources._paging import PageRequest, PagingError, lookup, make_pager
from conveyor.data.sources._redact import is_secret_name, redact_url, scrub
from conveyor.errors import SourceError
from conveyor.spec import HttpSource

if TYPE_CHECKING:
    import duckdb
    import httpx

__all__ = ["HttpJsonSource"]

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE: Final = 10_000
BACKOFF_BASE_S: Final = 0.5
BACKOFF_MAX_S: Final = 30.0
RETRY_AFTER_MAX_S: Final = 60.0
_RETRY_STATUSES: Final = frozenset({408, 429})
# Headers whose values are never secret; every other header value is scrubbed from messages.
_PLAIN_HEADERS: Final = frozenset(
    {"accept", "accept-encoding", "accept-language", "content-type", "user-agent"}
)
_AUTH_SCHEMES: Final = frozenset({"basic", "bearer", "bot", "digest", "token"})
_SNIPPET: Final = 200


class HttpJsonSource(BaseSource[HttpSource]):
    """JSON records from an HTTP API, fetched page by page and staged to Parquet.

    Each response must be JSON; ``records`` is the dotted path of the list of records in it
    (default: the body is the list), and every record must be a JSON object. Pagination
    (``page``, ``offset``, ``cursor``, ``next_link`` from a body field or the ``Link: rel=next``
    header) stops at the first empty page, a missing cursor or link, or ``max_pages``; an API
    that sends back the same cursor, link or page content would loop forever and is an error.

    Requests that fail with 408, 429 or 5xx, or with a connection error or timeout, are retried
    ``max_retries`` times with exponential backoff and jitter (``Retry-After`` is obeyed, up to
    60 s); ``timeout_s`` applies to each request. Other statuses fail at once.

    Records are staged in batches of ``batch_size`` to Parquet files under
    ``workdir/<name>/``, each batch typed on its own, and the view reads them with DuckDB's
    ``union_by_name``. So a field that first appears on a later page is NULL in earlier rows,
    a field that is NULL on early pages takes its type from later ones, and int and float
    widen to float. Values whose types cannot be reconciled (a number on one page, text on
    another) are **cast to text** rather than failing: the dataset's schema checks report them
    against the declared type. A source with no records at all is an error (there would be no
    columns).

    Header values never appear in messages or logs; URLs in them have their password and
    secret-looking query values (``api_key=``, ``token=``) replaced by ``***``. Put tokens in
    ``headers``, not ``params``: httpx logs request URLs at INFO level.
    """

    def __init__(
        self,
        name: str,
        config: HttpSource,
        *,
        project_root: Path,
        batch_size: int = DEFAULT_BATCH_SIZE,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Build the source; ``sleep``, ``jitter`` and ``transport`` are for tests.

        Args:
            name: The source's name.
            config: The source's spec (headers already environment-expanded).
            project_root: The project folder (unused by HTTP sources).
            batch_size: Records per staged Parquet file.
            sleep: Called with each backoff delay in seconds.
            jitter: Returns a float in [0, 1) that spreads backoff delays.
            transport: An httpx transport to use instead of the network.
        """
        super().__init__(name, config, project_root=project_root)
        self.batch_size = batch_size
        self._sleep = sleep
        self._jitter = jitter
        self._transport = transport
        self._secrets = [
            secret
            for header, value in config.headers.items()
            if header.lower() not in _PLAIN_HEADERS
            # The whole value, and its parts: a server may echo the token without "Bearer".
            for secret in [value, *value.split()]
            if secret.lower() not in _AUTH_SCHEMES
        ] + [
            str(value)
            for param, value in config.params.items()
            if is_secret_name(param) and value is not None
        ]
        password = urlsplit(config.url).password
        if password:
            self._secrets.append(unquote(password))

    def register(self, con: duckdb.DuckDBPyConnection, workdir: Path) -> None:
        """Fetch every page, stage the records to ``workdir/<name>/`` and create the view.

        Raises:
            SourceError: A request fails for good, a response is not JSON or has no list of
                records, a record is not an object, paging would loop, or there are no records.
        """
        final = workdir / self.name
        staging = workdir / f".{self.name}.{uuid.uuid4().hex}.tmp"
        staging.mkdir(parents=True)
        try:
            parts = _Parts(staging, self.batch_size)
            for page, records in self._pages():
                parts.add(records, page)
            parts.flush()
            if not parts.files:
                raise SourceError(
                    f"source {self.name!r}: {self._show(self.config.url, {})} returned no "
                    "records; check the URL, `params` and `records:`"
                )
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        paths = ", ".join(sql_string(final / path.name) for path in parts.files)
        casts = [
            f"CAST({quote_identifier(column)} AS VARCHAR) AS {quote_identifier(column)}"
            for column in sorted(parts.null_columns())
        ]
        replace = f" REPLACE ({', '.join(casts)})" if casts else ""
        with wrap_duckdb_errors(self.name):
            con.execute(
                f"CREATE OR REPLACE VIEW {quote_identifier(self.name)} AS SELECT *{replace} "
                f"FROM read_parquet([{paths}], union_by_name = true)"
            )

    def _pages(self) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        import httpx

        pager = make_pager(self.config)
        request: PageRequest | None = pager.first()
        max_pages = self.config.pagination.max_pages if self.config.pagination else None
        previous_digest = None
        page = 1
        with httpx.Client(
            headers=self.config.headers,
            timeout=self.config.timeout_s,
            follow_redirects=True,
            transport=self._transport,
        ) as client:
            while request is not None:
                response = self._send(client, request, page)
                body = self._json(response, request, page)
                records = self._records(body, request, page)
                digest = hashlib.sha256(response.content).digest()
                if records and digest == previous_digest:
                    raise self._error(
                        request,
                        page,
                        "returned the same records as the page before, so paging would never "
                        "end; check that the API honours the `pagination` parameters",
                    )
                previous_digest = digest
                logger.debug("source %r: page %d has %d records", self.name, page, len(records))
                yield page, records
                if max_pages is not None and page >= max_pages:
                    return
                current = request
                try:
                    request = pager.next(current, response, body, records)
                except PagingError as err:
                    raise self._error(current, page, str(err)) from err
                page += 1

    def _send(self, client: httpx.Client, request: PageRequest, page: int) -> httpx.Response:
        import httpx

        attempts = self.config.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                response = client.request(
                    self.config.method, request.url, params=request.params or None
                )
            except httpx.UnsupportedProtocol as err:
                raise self._error(request, page, f"cannot be requested: {err}") from err
            except httpx.TransportError as err:
                problem = f"{type(err).__name__}: {err}"
                delay = self._backoff(attempt)
                cause: Exception | None = err
            else:
                if response.is_success:
                    return response
                problem = f"HTTP {response.status_code} {response.reason_phrase}"
                if not _retryable(response.status_code):
                    raise self._error(
                        request,
                        page,
                        f"failed with {problem}: {_snippet(response.text)!r}; "
                        + _status_fix(response.status_code),
                    )
                after = _retry_after(response)
                delay = self._backoff(attempt) if after is None else after
                cause = None
            if attempt < attempts:
                where = self._show(request.url, request.params)
                message = (
                    f"source {self.name!r}: {problem} from {where} (page {page}); "
                    f"retry {attempt}/{self.config.max_retries} in {delay:.1f}s"
                )
                logger.warning("%s", scrub(message, self._secrets))
                self._sleep(delay)
        raise self._error(
            request,
            page,
            f"failed after {attempts} attempts; the last with {problem}. The server may be down "
            "or overloaded: try again later, or raise `max_retries` / `timeout_s`",
        ) from cause

    def _backoff(self, attempt: int) -> float:
        delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2.0 ** (attempt - 1))
        return delay / 2 + delay / 2 * self._jitter()

    def _json(self, response: httpx.Response, request: PageRequest, page: int) -> Any:
        try:
            return response.json()
        except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            kind = response.headers.get("content-type", "no content type")
            raise self._error(
                request,
                page,
                f"is not JSON ({kind}, {len(response.content)} bytes, starting "
                f"{_snippet(response.text)!r}): {err}; check the URL and that the API "
                "returns JSON",
            ) from err

    def _records(self, body: Any, request: PageRequest, page: int) -> list[dict[str, Any]]:
        path = self.config.records
        if path is None:
            records = body
            if not isinstance(records, list):
                raise self._error(
                    request,
                    page,
                    f"has a JSON {_json_type(body)} as its body, not a list of records"
                    f"{_keys_hint(body)}; set `records:` to the dotted path of the list",
                )
        else:
            found, records = lookup(body, path)
            if not found:
                raise self._error(
                    request,
                    page,
                    f"has no {path!r} in its body{_keys_hint(body)}; set `records:` to the "
                    "dotted path of the list of records",
                )
            if not isinstance(records, list):
                raise self._error(
                    request,
                    page,
                    f"has a JSON {_json_type(records)} at {path!r}, not a list of records; "
                    "set `records:` to the dotted path of the list",
                )
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise self._error(
                    request,
                    page,
                    f"holds record {index} that is a JSON {_json_type(record)} "
                    f"({_snippet(repr(record))}), not an object; point `records:` at a list "
                    "of objects",
                )
        return records

    def _error(self, request: PageRequest, page: int, problem: str) -> SourceError:
        where = f"{self.config.method} {self._show(request.url, request.params)} (page {page})"
        return SourceError(scrub(f"source {self.name!r}: {where} {problem}", self._secrets))

    def _show(self, url: str, params: dict[str, Any]) -> str:
        import httpx

        try:
            full = str(httpx.URL(url).copy_merge_params(params))
        except httpx.InvalidURL:
            full = url
        return redact_url(full)


class _Parts:
    """Buffers records and writes them as numbered Parquet files of ``batch_size`` records."""

    def __init__(self, folder: Path, batch_size: int) -> None:
        self.folder = folder
        self.batch_size = batch_size
        self.files: list[Path] = []
        self._buffer: list[dict[str, Any]] = []
        self._pages: tuple[int, int] | None = None
        self._seen: set[str] = set()
        self._typed: set[str] = set()

    def add(self, records: list[dict[str, Any]], page: int) -> None:
        if not records:
            return
        self._buffer.extend(records)
        first = self._pages[0] if self._pages else page
        self._pages = (first, page)
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._buffer or self._pages is None:
            return
        table = records_table(self._buffer)
        first, last = self._pages
        # The name says which pages the file holds, for DuckDB errors that name a file.
        path = self.folder / f"part-{len(self.files):05d}-pages-{first}-{last}.parquet"
        pq.write_table(table, path)
        self.files.append(path)
        self._seen.update(table.column_names)
        self._typed.update(f.name for f in table.schema if not pa.types.is_null(f.type))
        self._buffer = []
        self._pages = None

    def null_columns(self) -> set[str]:
        """Fields that were null in every record: they become text rather than DuckDB's NULL."""
        return self._seen - self._typed


def _retryable(status: int) -> bool:
    return status in _RETRY_STATUSES or 500 <= status <= 599


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


def _status_fix(status: int) -> str:
    if status in {401, 403}:
        return "check the credentials in `headers` (and the variables they come from)"
    if status == 404:
        return "check the URL"
    return "check the URL, `params` and `headers`"


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _keys_hint(body: Any) -> str:
    if isinstance(body, dict) and body:
        keys = ", ".join(list(body)[:10])
        return f" (its keys: {keys})"
    return ""
