"""The server process: worker processes sharing one port, each running uvicorn on the app.

The parent binds the port (so a busy port fails at once, and port 0 picks a free one),
exports the thread limits and the Prometheus folder, and spawns ``workers`` processes that
share the listening socket. Each worker loads the models at startup (its ``/readyz`` answers
503 meanwhile) and tells the parent when it is ready. On SIGTERM or SIGINT the parent asks
every worker to stop: a worker stops accepting, answers the requests in flight, flushes the
prediction log, sends its last statistics and exits 0; then the parent exits 0. Every wait of
the stop is bounded: a worker still running ``graceful_seconds + STOP_MARGIN_S`` after
SIGTERM is killed (and reported, exit code 1), and a second SIGTERM or SIGINT kills the
workers at once. A worker that cannot load its models stops the whole server with exit code
1; one that dies later is replaced (see :class:`~conveyor.serving._supervisor.Supervisor`).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConveyorError, SettingsError
from conveyor.serving._supervisor import KILL_WAIT_S, Supervisor, WorkerEvents, WorkerReady
from conveyor.serving.app._options import AppOptions

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from conveyor.serving._follower import ServingPlan
    from conveyor.serving._loading import LoadedModel, ResolvedModel

__all__ = ["ServerConfig", "WorkerReady", "bind_socket", "run_server"]

logger = logging.getLogger("conveyor.serving")

#: GIL switch interval in the workers (see ``_worker``).
SWITCH_INTERVAL_S = 0.0005

#: How much longer than ``graceful_seconds`` a stopping worker may take before it is killed.
STOP_MARGIN_S = 15.0

#: Longest wait at shutdown for the background threads (the follower writes the statistics).
THREADS_TIMEOUT_S = 30.0

#: Thread pools of the numeric libraries, limited per worker before they load.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


@dataclass(frozen=True)
class ServerConfig:
    """Everything a worker needs; pickled to each spawned worker.

    Attributes:
        model_uris: ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``; the first is the
            default model (``/predict``, ``/invocations``). Empty: follow ``project``'s
            deployment instead (needs ``store_url``).
        tracking_uri: MLflow's tracking and registry URI.
        cache_dir: Where model versions are downloaded (shared by the workers).
        host: Interface to listen on.
        port: TCP port (0 picks a free one).
        workers: Worker processes.
        model_threads: Threads each model may use in each worker.
        runtime: ``auto``, ``onnx`` or ``native``.
        app: The app's limits, batching and cache.
        prediction_log_url: Where the prediction log is written (None: not logged).
        log_flush_seconds: Seconds between prediction log writes.
        log_flush_rows: Buffered rows that make the prediction log write sooner.
        log_sample_rate: Share of requests logged.
        graceful_seconds: Longest a stopping worker waits for requests in flight.
        log_level: uvicorn's log level.
        project: The project whose deployment is followed (with empty ``model_uris``).
        store_url: The metadata store holding the deployment and the serving statistics.
        poll_seconds: Time between two looks at the deployment.
        store_grace_seconds: How long the store may be unreachable before ``/readyz`` says 503
            (predictions go on with the last known deployment).
    """

    model_uris: tuple[str, ...]
    tracking_uri: str
    cache_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    model_threads: int = 1
    runtime: str = "auto"
    app: AppOptions = field(default_factory=AppOptions)
    prediction_log_url: str | None = None
    log_flush_seconds: float = 5.0
    log_flush_rows: int = 10_000
    log_sample_rate: float = 1.0
    graceful_seconds: float = 30.0
    log_level: str = "warning"
    project: str | None = None
    store_url: str | None = None
    poll_seconds: float = 1.0
    store_grace_seconds: float = 60.0

    @property
    def follows_deployment(self) -> bool:
        """Whether the server serves the project's deployment (no explicit models)."""
        return not self.model_uris and self.project is not None and self.store_url is not None


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, inheritable by the workers.

    Raises:
        SettingsError: the address cannot be bound (port in use, unknown interface).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise SettingsError(
            f"cannot listen on {host}:{port}: {err.strerror or err}; choose another --port "
            "or stop the process using it"
        ) from err
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_server(
    config: ServerConfig,
    *,
    sock: socket.socket | None = None,
    report: Callable[[str], None] = print,
    ready_timeout: float = 300.0,
    background: Sequence[Callable[[threading.Event], None]] = (),
) -> int:
    """Run the server until SIGTERM/SIGINT; returns the exit code (0 after a clean stop).

    Args:
        config: The server's settings.
        sock: An already bound socket (default: bind ``config.host:config.port``).
        report: Receives one line per event: the URL, each worker's readiness, the stop.
        ready_timeout: Longest wait for every worker to load its models.
        background: Loops run in threads of this process once the workers start, each until
            the event it gets is set at shutdown (``conveyor serve --controller``).

    Raises:
        SettingsError: the address cannot be bound or a setting is invalid.
    """
    if config.workers < 1:
        raise SettingsError(f"workers must be at least 1, not {config.workers}")
    if not config.model_uris and not config.follows_deployment:
        raise SettingsError("no model to serve; pass --model models:/NAME@ALIAS")
    sock = sock or bind_socket(config.host, config.port)
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    for name in THREAD_VARIABLES:  # inherited by the spawned workers before numpy loads
        os.environ[name] = str(config.model_threads)
    metrics_dir = None
    if config.workers > 1:
        from conveyor.serving._metrics import ServerMetrics

        metrics_dir = Path(tempfile.mkdtemp(prefix="conveyor-metrics-"))
        ServerMetrics.prepare_multiprocess_dir(metrics_dir)
    # Resolve (and download) every model once, here: MLflow takes seconds to import and to
    # connect, so workers that only verify and load local files are ready in about a second.
    from conveyor.registry._client import redact_uri
    from conveyor.serving._follower import DeploymentFollower, ServingPlan, replica_name
    from conveyor.serving._loading import load_resolved, resolve_model

    def resolve(uri: str) -> ResolvedModel:
        return resolve_model(uri, tracking_uri=config.tracking_uri, cache_dir=config.cache_dir)

    follower = None
    if config.follows_deployment:
        assert config.store_url is not None and config.project is not None
        report(f"following the deployment of {config.project} ({redact_uri(config.tracking_uri)})")
        follower = DeploymentFollower(
            config.store_url,
            config.project,
            resolve,
            replica_name(port),
            check=partial(load_resolved, runtime=config.runtime, threads=1),  # type: ignore[arg-type]
            poll_seconds=config.poll_seconds,
            grace_seconds=config.store_grace_seconds,
        )
        plan = follower.initial_plan()
    else:
        report(f"resolving {', '.join(config.model_uris)} in {redact_uri(config.tracking_uri)}")
        plan = ServingPlan(tuple(resolve(uri) for uri in config.model_uris))
    current = [plan]
    context = multiprocessing.get_context("spawn")
    events = WorkerEvents()
    controls: dict[int, multiprocessing.Queue[Any]] = {}
    stopping: list[int] = []
    monitor: list[Any] = []  # the latest monitoring gauges, also for workers started later

    def on_signal(signum: int, frame: object) -> None:
        stopping.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    processes: list[BaseProcess] = []
    log_prefix = f"{_safe_host()}-p{port}"

    def spawn(index: int) -> BaseProcess:
        control = controls[index] = context.Queue()
        # At exit, the parent must not wait until its messages reach a worker that stopped
        # (or died) without reading them.
        control.cancel_join_thread()
        if monitor:
            control.put(("monitor", monitor[0]))
        worker_events: multiprocessing.Queue[Any] = context.Queue()  # one each: see WorkerEvents
        process = context.Process(
            target=_worker,
            args=(config, current[0], sock, index, worker_events, control, metrics_dir),
            kwargs={"log_id": f"{log_prefix}-w{index}"},
            name=f"conveyor-worker-{index}",
        )
        process.start()
        events.attach(index, worker_events)
        return process

    def broadcast(new: ServingPlan) -> None:
        current[0] = new
        report(f"deployment changed: {new.describe()} [{new.revision}]")
        for control in controls.values():
            control.put(new)

    def publish_monitor(snapshot: Any) -> None:
        monitor[:] = [snapshot]
        for control in controls.values():
            control.put(("monitor", snapshot))

    def readiness(problem: str | None) -> None:
        report(f"not ready: {problem}" if problem else "ready again: the metadata store answers")
        for control in controls.values():
            control.put(("degraded", problem))

    stop_following = threading.Event()
    # Daemon threads: joined with a timeout at shutdown, then left behind rather than waited for.
    threads = [
        threading.Thread(
            target=loop, args=(stop_following,), name=f"conveyor-background-{i}", daemon=True
        )
        for i, loop in enumerate(background)
    ]
    if follower is not None:
        threads.append(
            threading.Thread(
                target=follower.run,
                args=(stop_following, broadcast, readiness, publish_monitor),
                name="conveyor-follower",
                daemon=True,
            )
        )

    try:
        report(f"starting {config.workers} worker(s) on {url} for {plan.describe()}")
        processes.extend(spawn(index) for index in range(config.workers))
        for thread in threads:
            thread.start()
        on_stats = follower.add_stats if follower is not None else None
        supervisor = Supervisor(processes, spawn, events, report, url, on_stats)
        code = supervisor.run(stopping, ready_timeout)
        supervisor.stop(config.graceful_seconds + STOP_MARGIN_S)
        supervisor.drain_events()  # the workers' last statistics
        stop_following.set()
        _join(threads, THREADS_TIMEOUT_S, supervisor, report)
        exits = [p.exitcode for p in processes]
        report(f"stopped (worker exit codes: {', '.join(str(c) for c in exits)})")
        if code == 0 and any(c != 0 for c in exits):
            code = 1
        return code
    finally:
        for process in processes:  # left running only when supervising itself failed
            if process.exitcode is None:
                process.kill()
                process.join(KILL_WAIT_S)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sock.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _join(
    threads: Sequence[threading.Thread],
    timeout: float,
    supervisor: Supervisor,
    report: Callable[[str], None],
) -> None:
    """Wait for ``threads`` at most ``timeout`` seconds, or until another stop signal."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        while thread.is_alive() and time.monotonic() < deadline and not supervisor.hurried:
            thread.join(0.1)
        if thread.is_alive():
            report(f"not waiting any longer for {thread.name}")


def _worker(
    config: ServerConfig,
    plan: ServingPlan,
    sock: socket.socket,
    index: int,
    events: multiprocessing.Queue[Any],
    control: multiprocessing.Queue[Any],
    metrics_dir: Path | None,
    *,
    log_id: str,
) -> None:
    """One worker process: uvicorn (uvloop, httptools) serving the app on the shared socket.

    It loads ``plan``'s models, then follows the plans that arrive on ``control`` (a thread
    loads the versions it lacks and the event loop switches to them between two requests).
    """
    started = time.perf_counter()  # load_seconds: from the worker's imports to warmed up
    import sys

    import uvicorn

    from conveyor.serving._loading import load_resolved
    from conveyor.serving._metrics import ServerMetrics
    from conveyor.serving._predlog import PredictionLog
    from conveyor.serving._rollout_stats import StatsRecorder
    from conveyor.serving.app import create_app
    from conveyor.serving.app._state import ModelSet

    logging.basicConfig(level=config.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    # The prediction log's flush thread converts buffered rows while requests are served. With
    # CPython's default 5 ms switch interval, each time the event loop returns from epoll it
    # may wait up to 5 ms for the GIL held by that thread, several times per request; 0.5 ms
    # bounds that wait at the cost of more (cheap) switches while a flush runs.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    metrics = ServerMetrics(multiprocess_dir=metrics_dir)
    prediction_log = None
    if config.prediction_log_url is not None:
        prediction_log = PredictionLog(
            config.prediction_log_url,
            worker_id=log_id,
            flush_seconds=config.log_flush_seconds,
            flush_rows=config.log_flush_rows,
            sample_rate=config.log_sample_rate,
        )
    failed: list[BaseException] = []
    loaded: dict[tuple[str, int], LoadedModel] = {}

    def load_plan(new: ServingPlan, since: float) -> ModelSet:
        models = []
        for model in new.models:
            key = (model.name, model.version)
            if key not in loaded:
                loaded[key] = load_resolved(
                    model,
                    runtime=config.runtime,  # type: ignore[arg-type]
                    threads=config.model_threads,
                    started=since,
                )
            models.append(loaded[key])
        for key in set(loaded) - {(m.name, m.version) for m in new.models}:
            del loaded[key]
        return ModelSet(models, new.traffic_plans(), new.sticky_header, new.revision)

    def load() -> ModelSet:
        return load_plan(plan, started)

    def follow() -> None:
        while True:
            new = control.get()
            if new is None:
                return
            if isinstance(new, tuple) and new[0] == "monitor":  # the monitoring gauges
                metrics.set_monitor(new[1])
                continue
            if isinstance(new, tuple):  # ("degraded", reason or None)
                app.state.serving.degraded = new[1]
                continue
            while not app.state.serving.ready:  # the first plan is still loading
                if app.state.serving.status in ("failed", "stopping"):
                    return
                time.sleep(0.05)
            try:
                models = load_plan(new, time.perf_counter())
                app.state.serving.apply_threadsafe(
                    models.loaded,
                    models.traffic,
                    sticky_header=models.sticky_header,
                    revision=models.revision,
                ).result()
            except Exception as err:
                logging.getLogger("conveyor.serving").exception("applying a new plan failed")
                events.put(("applied", index, f"nothing new: the plan failed ({err})"))
                continue
            events.put(("applied", index, new.describe()))

    def on_ready(models: list[LoadedModel]) -> None:
        # Everything loaded so far (libraries, models) lives as long as the worker: moving it
        # out of the collector's reach keeps full collections from pausing requests for tens
        # of milliseconds (measured: p99 at 1,000 req/s).
        gc.collect()
        gc.freeze()
        summary = tuple(
            (m.name, m.version, m.runtime.kind, round(m.load_seconds, 3)) for m in models
        )
        events.put(WorkerReady(index, os.getpid(), summary))

    def on_error(err: BaseException) -> None:
        failed.append(err)
        message = str(err) if isinstance(err, ConveyorError) else f"{type(err).__name__}: {err}"
        events.put(("failed", index, message))
        server.should_exit = True

    stats = StatsRecorder() if config.follows_deployment else None
    app = create_app(
        load,
        options=config.app,
        metrics=metrics,
        prediction_log=prediction_log,
        on_load_error=on_error,
        on_ready=on_ready,
        stats=stats,
        on_stats=lambda deltas: events.put(("stats", index, deltas)),
    )
    threading.Thread(target=follow, name="conveyor-plans", daemon=True).start()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level=config.log_level,
            server_header=False,
            timeout_graceful_shutdown=max(1, round(config.graceful_seconds)),
            backlog=2048,
        )
    )
    # uvicorn re-raises the stop signal after its graceful shutdown, to the handler that was
    # there before it; a no-op one lets the worker exit 0 once everything is flushed.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _ignore)
    server.run(sockets=[sock])
    sys.exit(3 if failed else 0)


def _ignore(signum: int, frame: object) -> None:
    """A signal handler that does nothing (see ``_worker``)."""


def _safe_host() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"
