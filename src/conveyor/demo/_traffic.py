"""Replaying rows through a prediction server as live traffic: ``POST /predict`` in time order.

The replayer sends a table's rows in their order, ``batch_rows`` rows per request, over a few
keep-alive connections (one thread each, standard library ``http.client``: the client should
cost the machine less than the server it exercises). Each request carries its own
``X-Request-ID``, so every row sent is known in the prediction log by ``(request_id, row)``
(the row's index within its request): that is the key labels are joined on later. Responses
name the model version that answered (``X-Model-Version``); the result counts requests, rows,
errors and latencies per version, which is what a canary's traffic split looks like from
outside.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ReplayError", "ReplayProgress", "ReplayResult", "Replayer", "VersionStats"]

_VERSION_HEADER: Final = "x-model-version"
_CONNECTION_ERROR: Final = 0  # the status recorded when no answer came
_BACKOFF_SECONDS: Final = 0.1
_PROGRESS_SECONDS: Final = 0.1


class ReplayError(ConveyorError):
    """The replay cannot start: a bad URL or arguments."""


@dataclass(frozen=True)
class VersionStats:
    """What one model version (or no version: ``None``) answered during a replay.

    Attributes:
        version: The version named by ``X-Model-Version``; None for requests that got no
            answer naming one (connection errors, a server not ready).
        requests: Requests answered (or failed) under this version.
        rows: Rows those requests carried.
        errors: Requests with HTTP status >= 500 or no answer at all.
        client_errors: Requests refused with a 4xx status (the rows did not fit the model).
        p50_ms: Median request latency, in milliseconds (retries included).
        p99_ms: 99th percentile latency, in milliseconds.
    """

    version: int | None
    requests: int
    rows: int
    errors: int
    client_errors: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class ReplayProgress:
    """A replay's progress so far (given to ``on_progress`` about ten times a second).

    Attributes:
        rows_done: Rows whose request got an answer or failed.
        rows_total: Rows to send.
        errors: Failed requests so far (status >= 500 or no answer).
        rows_by_version: Rows answered per model version (None: no version named).
    """

    rows_done: int
    rows_total: int
    errors: int
    rows_by_version: Mapping[int | None, int]


@dataclass(frozen=True)
class ReplayResult:
    """What a replay sent and what answered it.

    Attributes:
        flights: One row per row sent, in the order given: ``flight_id`` (the id passed to
            :meth:`Replayer.send`), ``request_id`` and ``row`` (its key in the prediction
            log), ``model_version`` (int64, null when no version answered) and ``status``
            (the HTTP status of its request; 0 when no answer came).
        versions: Statistics per answering version, most rows first.
        seconds: Wall-clock time of the replay.
        cpu_seconds: CPU time this process used meanwhile (all its threads, so it includes
            anything else the process did).
    """

    flights: pa.Table
    versions: tuple[VersionStats, ...]
    seconds: float
    cpu_seconds: float

    @property
    def rows(self) -> int:
        """Rows sent."""
        return int(self.flights.num_rows)

    @property
    def errors(self) -> int:
        """Requests that failed (status >= 500 or no answer)."""
        return sum(stats.errors for stats in self.versions)

    @property
    def rows_per_second(self) -> float:
        """Rows sent per second of wall-clock time."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Shared:
    """State the sending threads share (under ``lock``)."""

    bodies: list[bytes]
    request_ids: list[str]
    sizes: list[int]
    statuses: list[int]
    versions: list[int | None]
    latencies: list[float]
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_batch: int = 0
    rows_done: int = 0
    errors: int = 0
    rows_by_version: dict[int | None, int] = field(default_factory=dict)


class Replayer:
    """Sends a table's rows to ``POST /predict`` in order, in batches, over keep-alive connections.

    A request whose connection is refused or dropped before an answer (a worker restarting)
    is retried on a new connection up to ``retries`` times, waiting 0.1 s, 0.2 s, 0.4 s ...;
    a retried request may have reached the server, so its rows can be logged twice under the
    same ``(request_id, row)``. HTTP errors are counted, not retried. Connections stay open
    between calls to :meth:`send` until :meth:`close`. One replayer sends one table at a time.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:8000``.
        batch_rows: Rows per request.
        concurrency: Connections (and threads) sending at once; with more than one, requests
            leave in order but may be answered slightly out of order.
        timeout: Seconds to wait for an answer before counting the request as failed.
        retries: Attempts after the first for a refused or dropped connection.
        request_prefix: Put before each request id (the first row's id), so replaying the
            same rows twice gives distinct request ids.
        max_rows_per_second: Pace the replay to at most this rate; None: as fast as possible.
    """

    def __init__(
        self,
        base_url: str,
        *,
        batch_rows: int = 10,
        concurrency: int = 4,
        timeout: float = 30.0,
        retries: int = 5,
        request_prefix: str = "",
        max_rows_per_second: float | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ReplayError(
                f"cannot replay to {base_url!r}: give the server's http:// URL, e.g. "
                "http://127.0.0.1:8000"
            )
        if batch_rows < 1 or concurrency < 1 or retries < 0:
            raise ReplayError(
                "batch_rows and concurrency must be 1 or more and retries 0 or more; got "
                f"{batch_rows}, {concurrency} and {retries}"
            )
        if max_rows_per_second is not None and max_rows_per_second <= 0:
            raise ReplayError(f"max_rows_per_second must be positive, got {max_rows_per_second}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = (parts.path.rstrip("/") or "") + "/predict"
        self.batch_rows = batch_rows
        self.concurrency = concurrency
        self.timeout = timeout
        self.retries = retries
        self.request_prefix = request_prefix
        self.max_rows_per_second = max_rows_per_second
        self._connections: list[http.client.HTTPConnection] = []

    def send(
        self,
        table: pa.Table,
        flight_ids: Sequence[str] | pa.Array | pa.ChunkedArray,
        on_progress: Callable[[ReplayProgress], None] | None = None,
    ) -> ReplayResult:
        """Send every row of ``table`` (all its columns) and wait for the answers.

        Args:
            table: The rows to send, in the order to send them; every column is sent, as
                ``{"columns": [...], "data": [[...], ...]}``.
            flight_ids: One unique id per row; a request's id is its first row's id.
            on_progress: Called from this thread about ten times a second and once at the end.

        Returns:
            Each row's ``(request_id, row)`` and answering version, and per-version statistics.

        Raises:
            ReplayError: ``flight_ids`` does not have one id per row.
        """
        import pyarrow as pa

        if isinstance(flight_ids, pa.Array | pa.ChunkedArray):
            flight_ids = flight_ids.to_pylist()
        ids = [str(flight_id) for flight_id in flight_ids]
        if len(ids) != table.num_rows:
            raise ReplayError(f"{len(ids)} ids for {table.num_rows} rows; give one id per row")
        shared = self._prepare(table, ids)
        while len(self._connections) < self.concurrency:
            self._connections.append(
                http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            )
        started, cpu = time.perf_counter(), time.process_time()
        threads = [
            threading.Thread(target=self._work, args=(index, shared, started), daemon=True)
            for index in range(min(self.concurrency, len(shared.bodies)))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(_PROGRESS_SECONDS)
                if on_progress is not None:
                    on_progress(_progress(shared, len(ids)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        if on_progress is not None:
            on_progress(_progress(shared, len(ids)))
        flights = _flights_table(ids, shared)
        return ReplayResult(flights, _version_stats(shared), seconds, cpu)

    def close(self) -> None:
        """Close the connections kept open between calls to :meth:`send`."""
        for connection in self._connections:
            connection.close()
        self._connections.clear()

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _prepare(self, table: pa.Table, ids: list[str]) -> _Shared:
        import orjson

        names = table.column_names
        rows = list(zip(*(column.to_pylist() for column in table.columns), strict=True))
        step = self.batch_rows
        bodies, request_ids, sizes = [], [], []
        for start in range(0, len(rows), step):
            batch = rows[start : start + step]
            bodies.append(orjson.dumps({"columns": names, "data": batch}))
            request_ids.append(self.request_prefix + ids[start])
            sizes.append(len(batch))
        n = len(bodies)
        return _Shared(bodies, request_ids, sizes, [0] * n, [None] * n, [0.0] * n)

    def _work(self, index: int, shared: _Shared, started: float) -> None:
        connection = self._connections[index]
        while True:
            with shared.lock:
                batch = shared.next_batch
                if batch >= len(shared.bodies):
                    return
                shared.next_batch += 1
                rows_before = batch * self.batch_rows
            if self.max_rows_per_second is not None:
                wait = started + rows_before / self.max_rows_per_second - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            begin = time.perf_counter()
            status, version = self._post(
                connection, shared.bodies[batch], shared.request_ids[batch]
            )
            shared.latencies[batch] = (time.perf_counter() - begin) * 1000.0
            shared.statuses[batch] = status
            shared.versions[batch] = version
            with shared.lock:
                shared.rows_done += shared.sizes[batch]
                if status == _CONNECTION_ERROR or status >= 500:
                    shared.errors += 1
                else:
                    count = shared.rows_by_version.get(version, 0)
                    shared.rows_by_version[version] = count + shared.sizes[batch]

    def _post(
        self, connection: http.client.HTTPConnection, body: bytes, request_id: str
    ) -> tuple[int, int | None]:
        headers = {"Content-Type": "application/json", "X-Request-ID": request_id}
        for attempt in range(self.retries + 1):
            try:
                connection.request("POST", self.path, body, headers)
                response = connection.getresponse()
                response.read()
            except (ConnectionError, http.client.HTTPException):
                # Refused (a worker restarting) or dropped before an answer: reconnect.
                connection.close()
                if attempt < self.retries:
                    time.sleep(_BACKOFF_SECONDS * 2**attempt)
                continue
            except OSError:  # a timeout: the server may still be working on it
                connection.close()
                return _CONNECTION_ERROR, None
            header = response.getheader(_VERSION_HEADER)
            try:
                version = int(header) if header is not None else None
            except ValueError:
                version = None
            return response.status, version
        return _CONNECTION_ERROR, None


def _flights_table(ids: list[str], shared: _Shared) -> pa.Table:
    """One row per row sent: its id, ``(request_id, row)``, answering version and status."""
    import numpy as np
    import pyarrow as pa

    sizes = np.array(shared.sizes, dtype=np.int64)
    ends = np.cumsum(sizes)
    rows = np.arange(len(ids), dtype=np.int64) - np.repeat(ends - sizes, sizes)
    versions = [shared.versions[b] for b in np.repeat(np.arange(len(sizes)), sizes)]
    return pa.table(
        {
            "flight_id": pa.array(ids, pa.string()),
            "request_id": pa.array(np.repeat(np.array(shared.request_ids, dtype=object), sizes)),
            "row": pa.array(rows.astype(np.int32)),
            "model_version": pa.array(versions, pa.int64()),
            "status": pa.array(np.repeat(np.array(shared.statuses, dtype=np.int16), sizes)),
        }
    )


def _progress(shared: _Shared, total: int) -> ReplayProgress:
    with shared.lock:
        return ReplayProgress(shared.rows_done, total, shared.errors, dict(shared.rows_by_version))


def _version_stats(shared: _Shared) -> tuple[VersionStats, ...]:
    import numpy as np

    groups: dict[int | None, list[int]] = {}
    for batch, version in enumerate(shared.versions):
        groups.setdefault(version, []).append(batch)
    stats = []
    for version, batches in groups.items():
        statuses = [shared.statuses[b] for b in batches]
        latencies: Any = np.array([shared.latencies[b] for b in batches])
        stats.append(
            VersionStats(
                version=version,
                requests=len(batches),
                rows=sum(shared.sizes[b] for b in batches),
                errors=sum(1 for s in statuses if s == _CONNECTION_ERROR or s >= 500),
                client_errors=sum(1 for s in statuses if 400 <= s < 500),
                p50_ms=float(np.percentile(latencies, 50)),
                p99_ms=float(np.percentile(latencies, 99)),
            )
        )
    return tuple(sorted(stats, key=lambda s: -s.rows))
