"""Prometheus metrics of the prediction server, correct with one worker process or several.

With several workers, each request reaches one process, so each process's counters hold only
part of the truth. prometheus_client's multiprocess mode fixes that: every process writes its
values to memory-mapped files in a shared folder, and ``/metrics`` in any worker sums them.
The mode is process-wide and chosen when the first metric value is created, from the
environment variable ``PROMETHEUS_MULTIPROC_DIR``. How ``conveyor serve`` uses it:

1. The parent, before starting workers: ``ServerMetrics.prepare_multiprocess_dir(folder)``
   empties the folder of a previous run's files and sets the variable, so workers inherit it
   (spawned or forked) and their prometheus_client starts in multiprocess mode.
2. Each worker: ``ServerMetrics(multiprocess_dir=folder)``. If prometheus_client was imported
   before the variable was set, this switches the process to multiprocess mode itself; a
   variable pointing at another folder is an error.
3. When a worker exits, the parent calls ``ServerMetrics.mark_process_dead(pid, folder)`` so
   its ``conveyor_model_info`` stops being reported (its counts stay in the totals).

With one worker, ``ServerMetrics(multiprocess_dir=None)`` keeps values in memory.

Metrics (labels in braces)::

    conveyor_requests_total{endpoint,model_version,code}      counter
    conveyor_request_errors_total{endpoint,code}              counter, status >= 400 only
    conveyor_request_latency_seconds{endpoint,model_version}  histogram, 0.2 ms .. 1 s
    conveyor_batch_size{model_version}                        histogram, 1 .. 256 rows
    conveyor_batch_latency_seconds{model_version}             histogram, 0.2 ms .. 1 s
    conveyor_model_info{name,version,runtime}                 gauge, 1 while loaded

plus the gauges of the latest monitoring runs (drift, live quality) that the parent sends
with :meth:`ServerMetrics.set_monitor`; see :mod:`conveyor.serving._monitor_gauges`.

``endpoint`` must be a route name or template (``/v2/models/{name}/infer``), never a raw path:
every distinct label value is a new time series.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import SettingsError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from conveyor.serving._monitor_gauges import MonitorSnapshot

__all__ = ["ServerMetrics"]

_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY_BUCKETS = (
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    float("inf"),
)
_BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, float("inf"))


class _Tally:
    """Observations of one histogram child since the last flush: per-bucket counts and sum."""

    __slots__ = ("counts", "n", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets
        self.n = 0
        self.total = 0.0

    def add(self, bucket: int, value: float) -> None:
        self.counts[bucket] += 1
        self.n += 1
        self.total += value

    def write(self, histogram: Any) -> None:
        """Add the tallies to a prometheus_client Histogram child (its per-bucket values)."""
        histogram._sum.inc(self.total)
        for bucket, count in zip(histogram._buckets, self.counts, strict=True):
            if count:
                bucket.inc(count)


class ServerMetrics:
    """The server's metrics, and their rendering for ``GET /metrics``.

    ``observe_request`` and ``observe_batch`` are safe from any thread and cost well under a
    microsecond: they tally in memory, and :meth:`flush` (every second, and before each
    rendering) adds the tallies to the Prometheus values, so other workers' figures in
    ``/metrics`` lag by at most a second.
    """

    def __init__(self, *, multiprocess_dir: Path | None) -> None:
        """Create the metrics, in memory or in ``multiprocess_dir`` (see the module docstring).

        Raises:
            SettingsError: ``PROMETHEUS_MULTIPROC_DIR`` names another folder, or the folder
                cannot be created.
        """
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        from conveyor.serving._monitor_gauges import MonitorGauges

        self._dir = multiprocess_dir
        self._monitor = MonitorGauges()
        registry: CollectorRegistry | None = CollectorRegistry()
        if multiprocess_dir is not None:
            _enter_multiprocess_mode(multiprocess_dir)
            # Values live in the folder; rendering reads every process's files instead.
            registry = None
        self._registry = registry
        if registry is not None:
            registry.register(self._monitor)
        self._requests = Counter(
            "conveyor_requests",
            "Requests answered, by endpoint, model version and HTTP status code.",
            ("endpoint", "model_version", "code"),
            registry=registry,
        )
        self._errors = Counter(
            "conveyor_request_errors",
            "Requests answered with a 4xx or 5xx status code.",
            ("endpoint", "code"),
            registry=registry,
        )
        self._latency = Histogram(
            "conveyor_request_latency_seconds",
            "Time from receiving a request to sending its response.",
            ("endpoint", "model_version"),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self._batch_size = Histogram(
            "conveyor_batch_size",
            "Rows per model call (micro-batches of requests).",
            ("model_version",),
            buckets=_BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self._batch_latency = Histogram(
            "conveyor_batch_latency_seconds",
            "Duration of one model call.",
            ("model_version",),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self._model_info = Gauge(
            "conveyor_model_info",
            "1 for each model version this server has loaded, with its runtime.",
            ("name", "version", "runtime"),
            registry=registry,
            # The highest value among live processes: 1 if any worker has it loaded.
            multiprocess_mode="livemax",
        )
        self._lock = threading.Lock()
        self._request_tallies: dict[tuple[str, str, int], _Tally] = {}
        self._batch_tallies: dict[str, tuple[_Tally, _Tally]] = {}
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._batch_children: dict[str, tuple[Any, Any]] = {}
        self._runtimes: dict[tuple[str, str], str] = {}

    def observe_request(
        self, *, endpoint: str, model_version: str, status: int, seconds: float
    ) -> None:
        """Count one answered request and its latency (``status`` >= 400 also counts an error).

        Tallied in memory (a few hundred nanoseconds); :meth:`flush` writes the tallies into
        the Prometheus values.
        """
        key = (endpoint, model_version, status)
        with self._lock:
            tally = self._request_tallies.get(key)
            if tally is None:
                tally = self._request_tallies[key] = _Tally(len(_LATENCY_BUCKETS))
            tally.add(bisect_left(_LATENCY_BUCKETS, seconds), seconds)

    def observe_batch(self, *, model_version: str, size: int, seconds: float) -> None:
        """Record one model call over ``size`` rows that took ``seconds`` (tallied, see above)."""
        with self._lock:
            tallies = self._batch_tallies.get(model_version)
            if tallies is None:
                tallies = self._batch_tallies[model_version] = (
                    _Tally(len(_BATCH_SIZE_BUCKETS)),
                    _Tally(len(_LATENCY_BUCKETS)),
                )
            tallies[0].add(bisect_left(_BATCH_SIZE_BUCKETS, size), size)
            tallies[1].add(bisect_left(_LATENCY_BUCKETS, seconds), seconds)

    def flush(self) -> None:
        """Write what was tallied since the last flush into the Prometheus values.

        One value update per touched bucket instead of several per request: each update is a
        locked write into a memory-mapped file in multiprocess mode (~3.5 us, seven per
        request before). The server flushes every second and before rendering ``/metrics``.
        """
        with self._lock:
            requests, self._request_tallies = self._request_tallies, {}
            batches, self._batch_tallies = self._batch_tallies, {}
        for (endpoint, version, status), tally in requests.items():
            children = self._request_children.get((endpoint, version, status))
            if children is None:
                code = str(status)
                children = (
                    self._requests.labels(endpoint, version, code),
                    self._latency.labels(endpoint, version),
                    self._errors.labels(endpoint, code) if status >= 400 else None,
                )
                self._request_children[endpoint, version, status] = children
            count, latency, error = children
            count.inc(tally.n)
            if error is not None:
                error.inc(tally.n)
            tally.write(latency)
        for version, (sizes, latencies) in batches.items():
            batch_children = self._batch_children.get(version)
            if batch_children is None:
                batch_children = self._batch_children[version] = (
                    self._batch_size.labels(version),
                    self._batch_latency.labels(version),
                )
            sizes.write(batch_children[0])
            latencies.write(batch_children[1])

    def set_model_info(self, *, name: str, version: str, runtime: str) -> None:
        """Report that this process serves ``name`` version ``version`` with ``runtime``.

        Several versions may be reported at once (canary, A/B, shadow); reporting a version
        again with another runtime replaces the old runtime.
        """
        old = self._runtimes.get((name, version))
        if old is not None and old != runtime:
            self._model_info.labels(name, version, old).set(0)
        self._model_info.labels(name, version, runtime).set(1)
        self._runtimes[(name, version)] = runtime

    def clear_model_info(self, *, name: str, version: str) -> None:
        """Report that this process no longer serves ``name`` version ``version``.

        The series stays at 0 rather than disappearing (memory-mapped values cannot be
        removed), so dashboards should select ``conveyor_model_info == 1``.
        """
        runtime = self._runtimes.pop((name, version), None)
        if runtime is not None:
            self._model_info.labels(name, version, runtime).set(0)

    def set_monitor(self, snapshot: MonitorSnapshot) -> None:
        """Report these monitoring values from now on (replacing the previous ones)."""
        self._monitor.snapshot = snapshot

    def render(self) -> tuple[bytes, str]:
        """The body and content type of a ``GET /metrics`` response (all workers' values)."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        self.flush()
        registry = self._registry
        if registry is None:
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(self._dir))  # type: ignore[no-untyped-call]
            registry.register(self._monitor)  # this process's copy, the same in every worker
        return generate_latest(registry), CONTENT_TYPE_LATEST

    @staticmethod
    def prepare_multiprocess_dir(directory: Path) -> None:
        """In the server's parent process, before starting workers: empty and export the folder.

        Removes a previous run's ``*.db`` files (their counts would otherwise be added to this
        run's) and sets ``PROMETHEUS_MULTIPROC_DIR`` in ``os.environ`` for the workers.
        """
        _make_dir(directory)
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
        os.environ[_ENV] = str(directory)

    @staticmethod
    def mark_process_dead(pid: int, directory: Path) -> None:
        """In the parent, after worker ``pid`` exited: stop reporting its live gauges."""
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def _make_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SettingsError(
            f"Cannot create the metrics folder {directory}: {err}. Choose a writable folder "
            "(a local disk or tmpfs, never a network share) for the server's metrics."
        ) from err


def _enter_multiprocess_mode(directory: Path) -> None:
    """Make this process record metric values as memory-mapped files in ``directory``."""
    from prometheus_client import values

    current = os.environ.get(_ENV)
    if current is not None and os.path.realpath(current) != os.path.realpath(directory):
        raise SettingsError(
            f"{_ENV} is {current!r}, but the server's metrics folder is {str(directory)!r}. "
            f"Unset {_ENV} or point it at the same folder: prometheus_client writes every "
            "metric of a process to the one folder it names."
        )
    _make_dir(directory)
    os.environ[_ENV] = str(directory)
    if not getattr(values.ValueClass, "_multiprocess", False):
        # prometheus_client chose in-memory values when it was imported, before the variable
        # was set; metrics created from now on use files (earlier ones are not aggregated).
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
