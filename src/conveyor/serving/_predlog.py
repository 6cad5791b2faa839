"""The prediction log: every (sampled) request and its predictions, written as Parquet.

``append`` runs on the request path and only stores references under a lock; a daemon thread
writes what was buffered every ``flush_seconds`` (sooner once ``flush_rows`` rows wait).

Layout, Hive-partitioned so DuckDB, pyarrow.dataset and Spark read it as one table::

    {base_url}/predictions/date=YYYY-MM-DD/model_version=N/part-{worker_id}-{utc}-{seq}.parquet
    {base_url}/predictions/_pending/{worker_id}.pending     (local folders only, see below)

One row per predicted row, flat columns (what SQL and per-feature drift statistics read most
easily; a feature named ``timestamp`` cannot clash with the metadata)::

    request_id string, row int32 (index within the request), timestamp timestamp[us, UTC],
    model_name string, model_version int64, latency_ms float64 (of the whole call),
    shadow bool (a shadow version's prediction, never returned to the caller),
    in_<feature>  one per input,  out_<output>  one per model output (``out_prediction``, ...)

1-D arrays become scalar columns; an (n, k) array (class probabilities, embeddings) becomes a
fixed-size list column that DuckDB indexes from 1 (``out_proba[2]``). Versions with different
features land in different ``model_version=`` folders; read them together with
``read_parquet('<base>/predictions/**/*.parquet', hive_partitioning=true, union_by_name=true)``.
"""

from __future__ import annotations

import logging
import mmap
import os
import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.artifacts._filesystem import is_local, open_filesystem
from conveyor.errors import ArtifactError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["FlushStats", "PredictionLog"]

_log = logging.getLogger("conveyor.serving")

_CHUNK = 512
"""Requests converted to Arrow at a time by a flush (see ``_convert_in_chunks``)."""

# (request_id, timestamp, model_name, model_version, inputs, outputs, latency_ms, n_rows,
# shadow): a plain tuple is the cheapest record to build on the request path.
_Arrays = Mapping[str, "np.ndarray[Any, Any]"]
_Entry = tuple[str, float, str, int, _Arrays, _Arrays, float, int, bool]
_GroupKey = tuple[int, int, str, tuple[str, ...], tuple[str, ...], bool]
_SAFE_ID = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
# Rows kept for retry while the store refuses writes, as a multiple of flush_rows.
_RETRY_FACTOR = 10


@dataclass(frozen=True)
class FlushStats:
    """What a prediction log did with the rows it was given.

    Once closed, every appended row is counted in exactly one field except ``files_written``.

    Attributes:
        rows_written: Rows now in Parquet files.
        files_written: Parquet files written.
        rows_dropped: Rows left out on purpose by sampling (``sample_rate`` < 1).
        rows_pending_lost: Rows accepted but never written: malformed arrays, the store refusing
            writes for longer than the retry buffer lasts, a failed final flush, or appends
            after ``close``.
    """

    rows_written: int
    files_written: int
    rows_dropped: int
    rows_pending_lost: int


class PredictionLog:
    """Buffers predictions in memory and writes them as partitioned Parquet files.

    Loss accounting: ``close()`` writes everything buffered, so a clean shutdown (SIGTERM handled
    by the server's shutdown hook) loses nothing. A killed process (SIGKILL, OOM, power loss)
    loses the rows appended since its last flush: at most ``flush_seconds`` worth, or about
    ``flush_rows``. On a local folder each worker keeps a 16-byte memory-mapped sidecar,
    ``predictions/_pending/{worker_id}.pending``, holding the count of rows accepted but not yet
    written (updated in place on every append, ~0.05-0.1 µs; the kernel keeps the page
    when the process is killed). ``close()`` deletes it; ``start()`` of the next log with the same
    ``worker_id`` finds a leftover and logs "the previous worker ... lost at most N rows". So
    give workers ids that are unique among live workers and stable across restarts (e.g.
    ``{hostname}-{worker index}``). Object stores get no sidecar: updating an object costs a
    network round trip, which the request path cannot pay.

    A failed write keeps its rows for the next flush (up to ``10 * flush_rows`` rows).

    Invariants:
        - ``append`` never does I/O; it is safe from any number of threads at once.
        - Readers never see partial files: local files are written under a temporary name in
          the same folder and renamed; other stores receive each file as one object.
        - Arrays passed to ``append`` are referenced until written: do not modify them after.
        - ``close()`` is idempotent. Do not call it from a signal handler that can interrupt an
          ``append`` on the same thread (the lock is not re-entrant): set a flag instead, as
          uvicorn does, and close from the shutdown hook.
    """

    def __init__(
        self,
        base_url: str,
        *,
        worker_id: str,
        flush_seconds: float = 5.0,
        flush_rows: int = 10_000,
        sample_rate: float = 1.0,
        seed: int | None = None,
    ) -> None:
        """Prepare a log; nothing is written before the first flush.

        Args:
            base_url: A local folder or fsspec URL (usually the artifact store's root).
            worker_id: Names this worker's files; letters, digits, ``_.-`` only.
            flush_seconds: Longest time a row waits in memory (while the thread runs).
            flush_rows: Buffered rows that trigger a flush before the timer.
            sample_rate: Probability that a request is logged, decided per request.
            seed: Seeds the sampling, for reproducible tests.

        Raises:
            ValueError: An argument is out of range.
            BackendUnavailableError: The URL's fsspec implementation is not installed.
        """
        if not worker_id or not set(worker_id) <= _SAFE_ID:
            raise ValueError(
                f"worker_id {worker_id!r} must be non-empty and use only letters, digits, '_', "
                "'.' and '-' (it becomes part of file names)."
            )
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be between 0 and 1, got {sample_rate}.")
        if flush_seconds <= 0 or flush_rows < 1:
            raise ValueError(
                f"flush_seconds must be > 0 and flush_rows >= 1, got {flush_seconds} and "
                f"{flush_rows}."
            )
        self._fs, root = open_filesystem(base_url, {})
        self._local = is_local(self._fs)
        self._root = f"{str(root).rstrip('/')}/predictions"
        self._worker_id = worker_id
        self._flush_seconds = flush_seconds
        self._flush_rows = flush_rows
        self._sample_rate = sample_rate
        self._rng = random.Random(seed)

        self._lock = threading.Lock()  # guards the buffer and the counters below
        self._buffer: list[_Entry] = []
        self._buffered_rows = 0
        self._unwritten = 0  # accepted, not yet written (buffered or being written)
        self._counter: memoryview | None = None  # the sidecar's int64 slots: unwritten, pid
        self._wake_pending = False
        self._closed = False
        self._rows_written = self._files_written = 0
        self._rows_dropped = self._rows_lost = 0

        self._flush_lock = threading.Lock()  # one flush at a time; owns _seq
        self._seq = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._sidecar: tuple[mmap.mmap, str] | None = None

    def __repr__(self) -> str:
        return f"PredictionLog({self._root!r}, worker_id={self._worker_id!r})"

    @property
    def stats(self) -> FlushStats:
        """Counts so far (see ``FlushStats``)."""
        with self._lock:
            return FlushStats(
                self._rows_written, self._files_written, self._rows_dropped, self._rows_lost
            )

    # -- request path -----------------------------------------------------------------------

    def append(
        self,
        *,
        request_id: str,
        timestamp: float,
        model_name: str,
        model_version: int,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        outputs: Mapping[str, np.ndarray[Any, Any]],
        latency_ms: float,
        n_rows: int,
        shadow: bool = False,
    ) -> None:
        """Buffer one request (or batch part) of ``n_rows`` rows; every array has ``n_rows``.

        ``timestamp`` is Unix seconds (``time.time()``); sampling keeps or drops the whole
        request. Malformed arrays are found at flush time, logged and counted as lost.
        """
        with self._lock:
            if self._closed:
                self._rows_lost += n_rows
                return
            if self._sample_rate < 1.0 and self._rng.random() >= self._sample_rate:
                self._rows_dropped += n_rows
                return
            self._buffer.append(
                (
                    request_id,
                    timestamp,
                    model_name,
                    model_version,
                    inputs,
                    outputs,
                    latency_ms,
                    n_rows,
                    shadow,
                )
            )
            self._buffered_rows += n_rows
            self._unwritten += n_rows
            if self._counter is not None:
                self._counter[0] = self._unwritten
            if self._buffered_rows >= self._flush_rows and not self._wake_pending:
                self._wake_pending = True
                self._wake.set()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Report a previous crash (local sidecar) and start the flusher thread."""
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; create a new PredictionLog.")
        if self._thread is not None:
            return
        if self._local:
            try:
                self._open_sidecar()
            except OSError as err:
                _log.warning(
                    "Prediction log %s: no crash sidecar in %s/_pending (%s); a crash will "
                    "not be reported at the next start.",
                    self._worker_id,
                    self._root,
                    err,
                )
        # Warmed up now, at startup, rather than by the first flush while requests are served:
        # the first conversion and Parquet write import pyarrow.compute and set up the zstd
        # codec, which held the GIL for a few hundred milliseconds (the p99 of a fixed-rate
        # load right after startup).
        _warm_up()

        self._thread = threading.Thread(
            target=self._run, name=f"conveyor-predlog-{self._worker_id}", daemon=True
        )
        self._thread.start()

    def close(self, timeout: float = 10.0) -> FlushStats:
        """Stop the thread, write everything buffered and return the final counts.

        Never raises for a failed write: the rows are counted in ``rows_pending_lost`` and
        logged. ``timeout`` bounds the wait for a flush already in progress.
        """
        with self._lock:
            if self._closed:
                return self._stats_unlocked()
            self._closed = True
        self._stopping = True
        self._wake.set()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
        if self._flush_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            try:
                self._flush_locked()
            except Exception:
                _log.exception("Prediction log %s: the final flush failed.", self._worker_id)
            finally:
                self._flush_lock.release()
        with self._lock:
            lost, self._buffer, self._buffered_rows = self._buffered_rows, [], 0
            self._rows_lost += lost
            self._unwritten -= lost
            stats = self._stats_unlocked()
        self._close_sidecar()
        level = logging.ERROR if stats.rows_pending_lost else logging.INFO
        _log.log(
            level,
            "Prediction log %s closed: %d rows written in %d files, %d left out by sampling, "
            "%d lost.",
            self._worker_id,
            stats.rows_written,
            stats.files_written,
            stats.rows_dropped,
            stats.rows_pending_lost,
        )
        return stats

    def _stats_unlocked(self) -> FlushStats:
        return FlushStats(
            self._rows_written, self._files_written, self._rows_dropped, self._rows_lost
        )

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            if self._stopping:
                return  # close() does the final flush
            try:
                self.flush()
            except Exception:
                _log.exception("Prediction log %s: flush failed.", self._worker_id)

    # -- writing ----------------------------------------------------------------------------

    def flush(self) -> int:
        """Write everything buffered now and return the number of rows written.

        Raises:
            ArtifactError: The store refused a write; those rows stay buffered for the next
                flush (unless the retry buffer is full: then they are counted as lost).
        """
        with self._flush_lock:
            return self._flush_locked()

    def _flush_locked(self) -> int:
        with self._lock:
            batch, self._buffer = self._buffer, []
            self._buffered_rows = 0
            self._wake_pending = False
        if not batch:
            return 0
        written = 0
        failed: list[_Entry] = []
        error: BaseException | None = None
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1e6) % 10**6:06d}Z"
        for key, group in _group(batch).items():
            table, entries = self._convert_in_chunks(key, group)
            if table is None:
                continue
            rows = sum(e[7] for e in entries)
            try:
                self._write(key, table, stamp)
            except Exception as err:
                failed.extend(entries)
                error = err
                continue
            written += rows
            self._account(written=rows, files=1, lost=0)
        if failed:
            kept = self._retry_later(failed)
            raise ArtifactError(
                f"Cannot write the prediction log to {self._root}: {error}. {kept} rows stay "
                "buffered for the next flush; make sure the location is writable."
            ) from error
        _log.info("Prediction log %s: wrote %d rows.", self._worker_id, written)
        return written

    def _convert_in_chunks(
        self, key: _GroupKey, entries: list[_Entry]
    ) -> tuple[pa.Table | None, list[_Entry]]:
        """:meth:`_convert` a few hundred requests at a time, yielding the GIL in between.

        After a burst the buffer holds tens of thousands of requests; converting them in one
        go holds the GIL long enough to show in the server's p99 latency.
        """
        import pyarrow as pa

        tables: list[pa.Table] = []
        kept: list[_Entry] = []
        for start in range(0, len(entries), _CHUNK):
            table, good = self._convert(key, entries[start : start + _CHUNK])
            if table is not None:
                tables.append(table)
                kept.extend(good)
            time.sleep(0)  # let the event loop answer requests between chunks
        if not tables:
            return None, []
        return (
            tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
        ), kept

    def _convert(
        self, key: _GroupKey, entries: list[_Entry]
    ) -> tuple[pa.Table | None, list[_Entry]]:
        """Build a group's table; malformed entries are dropped, logged and counted as lost."""
        try:
            return _table(key, entries), entries
        except Exception:
            pass  # the fast path checks nothing per entry: find the culprits now
        good = [e for e in entries if _well_formed(e)]
        table = None
        try:
            table = _table(key, good) if good else None
        except Exception:
            good = []
        lost = sum(e[7] for e in entries) - sum(e[7] for e in good)
        _log.error(
            "Prediction log %s: dropped %d rows of model version %d that cannot be written as "
            "Parquet (an array whose length is not n_rows, or values of mixed types).",
            self._worker_id,
            lost,
            key[1],
        )
        self._account(written=0, files=0, lost=lost)
        return table, good

    def _account(self, *, written: int, files: int, lost: int) -> None:
        with self._lock:
            self._rows_written += written
            self._files_written += files
            self._rows_lost += lost
            self._unwritten -= written + lost
            if self._counter is not None:
                self._counter[0] = self._unwritten

    def _retry_later(self, entries: list[_Entry]) -> int:
        rows = sum(e[7] for e in entries)
        with self._lock:
            if self._buffered_rows + rows > _RETRY_FACTOR * self._flush_rows:
                self._rows_lost += rows
                self._unwritten -= rows
                if self._counter is not None:
                    self._counter[0] = self._unwritten
                _log.error(
                    "Prediction log %s: the store kept refusing writes; %d rows are lost.",
                    self._worker_id,
                    rows,
                )
                return 0
            self._buffer[:0] = entries
            self._buffered_rows += rows
            return rows

    def _write(self, key: _GroupKey, table: pa.Table, stamp: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        day, version = key[0], key[1]
        date = time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))
        folder = f"{self._root}/date={date}/model_version={version}"
        name = f"part-{self._worker_id}-{stamp}-{self._seq:06d}.parquet"
        self._seq += 1
        if not self._local:
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression="zstd")
            self._fs.pipe_file(f"{folder}/{name}", sink.getvalue().to_pybytes())
            return
        os.makedirs(folder, exist_ok=True)
        # A dot-name without the .parquet suffix: globs like **/*.parquet never match it.
        tmp = f"{folder}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with open(tmp, "xb") as out:
                pq.write_table(table, out, compression="zstd")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, f"{folder}/{name}")
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    # -- crash sidecar (local folders) ------------------------------------------------------

    def _open_sidecar(self) -> None:
        folder = f"{self._root}/_pending"
        path = f"{folder}/{self._worker_id}.pending"
        os.makedirs(folder, exist_ok=True)
        try:
            with open(path, "rb") as f:
                previous = f.read(16)
        except FileNotFoundError:
            previous = b""
        if len(previous) == 16:
            lost, pid = memoryview(previous).cast("q").tolist()
            _log.warning(
                "Prediction log: the previous worker %s (pid %d) stopped without closing its "
                "log and lost at most %d rows.",
                self._worker_id,
                pid,
                lost,
            )
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, bytes(16))
            mapped = mmap.mmap(fd, 16)
        finally:
            os.close(fd)
        counter = memoryview(mapped).cast("q")
        with self._lock:
            counter[0] = self._unwritten
            counter[1] = os.getpid()
            self._counter = counter
        self._sidecar = (mapped, path)

    def _close_sidecar(self) -> None:
        if self._sidecar is None:
            return
        mapped, path = self._sidecar
        with self._lock:
            counter, self._counter = self._counter, None
        if counter is not None:
            counter.release()
        mapped.close()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self._sidecar = None


def _warm_up() -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    one = np.zeros(1)
    entry: _Entry = ("warm-up", 0.0, "m", 0, {"x": one}, {"prediction": one}, 0.0, 1, False)
    ((key, entries),) = _group([entry]).items()
    pq.write_table(_table(key, entries), pa.BufferOutputStream(), compression="zstd")


def _group(batch: list[_Entry]) -> dict[_GroupKey, list[_Entry]]:
    """Group entries by (UTC day, version, model name, input names, output names, shadow)."""
    groups: dict[_GroupKey, list[_Entry]] = {}
    for entry in batch:
        inputs = entry[4]
        key = (
            int(entry[1] // 86_400),
            entry[3],
            entry[2],
            getattr(inputs, "names", None) or tuple(inputs),  # a ColumnBlock knows its names
            tuple(entry[5]),
            entry[8],
        )
        groups.setdefault(key, []).append(entry)
    return groups


def _well_formed(entry: _Entry) -> bool:
    n = entry[7]
    return all(len(a) == n for a in entry[4].values()) and all(
        len(a) == n for a in entry[5].values()
    )


def _table(key: _GroupKey, entries: list[_Entry]) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    _, version, model_name, input_names, output_names, shadow = key
    counts = np.fromiter((e[7] for e in entries), dtype=np.int64, count=len(entries))
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    timestamps = np.fromiter((e[1] for e in entries), dtype=np.float64, count=len(entries))
    latencies = np.fromiter((e[6] for e in entries), dtype=np.float64, count=len(entries))
    # Repeated by index: pa.array() of a numpy object array would import pandas.
    per_row = pa.array(np.repeat(np.arange(len(entries)), counts))
    columns: dict[str, pa.Array] = {
        "request_id": pa.array([e[0] for e in entries], pa.string()).take(per_row),
        "row": pa.array((np.arange(total) - np.repeat(starts, counts)).astype(np.int32)),
        "timestamp": pa.array(
            np.repeat(np.round(timestamps * 1e6).astype(np.int64), counts),
            pa.timestamp("us", tz="UTC"),
        ),
        "model_name": pa.repeat(pa.scalar(model_name, pa.string()), total),
        "model_version": pa.array(np.full(total, version, dtype=np.int64)),
        "latency_ms": pa.array(np.repeat(latencies, counts)),
        "shadow": pa.array(np.full(total, shadow, dtype=np.bool_)),
    }
    blocks: list[Any] = [getattr(e[4], "matrix", None) for e in entries]
    if all(b is not None and getattr(e[4], "names", None) == input_names
           for b, e in zip(blocks, entries, strict=True)):  # fmt: skip
        # Every request's inputs are rows of one features-by-rows array (the server's
        # all-numeric requests): one concatenation instead of one per feature.
        matrix = np.concatenate(blocks, axis=1)
        for index, name in enumerate(input_names):
            columns[f"in_{name}"] = _column(matrix[index], total)
    else:
        for name in input_names:
            columns[f"in_{name}"] = _column(np.concatenate([e[4][name] for e in entries]), total)
    for name in output_names:
        columns[f"out_{name}"] = _column(np.concatenate([e[5][name] for e in entries]), total)
    return pa.table(columns)


def _column(values: np.ndarray[Any, Any], total: int) -> pa.Array:
    """A 1-D array as a plain column, an (n, k, ...) array as a fixed-size list of k*... values."""
    import pyarrow as pa

    if len(values) != total:
        raise ValueError(f"{len(values)} values for {total} rows")
    if values.ndim == 1:
        return pa.array(values)
    flat = values.reshape(len(values), -1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])
