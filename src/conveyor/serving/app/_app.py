"""The app factory: one Starlette app per worker, serving every protocol for its models."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from conveyor.serving.app import (
    _health,
    _openapi,
    _outcomes,
    _protocol_conveyor,
    _protocol_mlflow,
    _protocol_v2,
)
from conveyor.serving.app._http import json_response
from conveyor.serving.app._middleware import RequestContext, request_id
from conveyor.serving.app._options import AppOptions
from conveyor.serving.app._state import ModelLoader, ServingState

if TYPE_CHECKING:
    from conveyor.serving._loading import LoadedModel
    from conveyor.serving._metrics import ServerMetrics
    from conveyor.serving._predlog import PredictionLog
    from conveyor.serving._rollout_stats import StatsDelta, StatsRecorder

__all__ = ["create_app"]

logger = logging.getLogger("conveyor.serving")


def create_app(
    models: Sequence[LoadedModel] | ModelLoader,
    *,
    options: AppOptions | None = None,
    metrics: ServerMetrics | None = None,
    prediction_log: PredictionLog | None = None,
    on_load_error: Callable[[BaseException], None] | None = None,
    on_ready: Callable[[list[LoadedModel]], None] | None = None,
    stats: StatsRecorder | None = None,
    on_stats: Callable[[list[StatsDelta]], None] | None = None,
    stats_seconds: float = 2.0,
) -> Starlette:
    """The prediction app for ``models`` (the first one answers ``/predict`` and ``/invocations``).

    Args:
        models: Loaded models, or a function that loads them. A loader runs in a thread once
            the app starts, so the probes answer meanwhile: ``/healthz`` 200, ``/readyz`` 503
            until every model is loaded and warmed up.
        options: Limits, batching and the response cache.
        metrics: Where request and batch metrics go (None: no ``/metrics``).
        prediction_log: Receives every prediction; the app starts it at startup and closes
            (flushes) it at shutdown, after the last request is answered.
        on_load_error: Called when the loader raises (the server uses it to stop the worker).
        on_ready: Called with the models once they serve (the server reports readiness).
        stats: Counts requests, errors, latencies, scores and reported outcomes (``POST
            /outcomes``, answered 404 without it) per version for rollouts.
        on_stats: Receives what ``stats`` counted, every ``stats_seconds`` and at shutdown.

    The app's state is at ``app.state.serving`` (a :class:`ServingState`).
    """
    state = ServingState(options or AppOptions(), metrics, prediction_log, stats)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.loop = asyncio.get_running_loop()
        if prediction_log is not None:
            prediction_log.start()
        loading: asyncio.Task[None] | None = None
        if callable(models):
            loading = asyncio.create_task(_load(state, models, on_load_error, on_ready))
        else:
            state.install(models)
        reporting = None
        if stats is not None and on_stats is not None:
            reporting = asyncio.create_task(_report_stats(stats, on_stats, stats_seconds))
        flushing = asyncio.create_task(_flush_metrics(metrics)) if metrics is not None else None
        try:
            yield
        finally:
            if flushing is not None and metrics is not None:
                flushing.cancel()
            if loading is not None and not loading.done():
                with contextlib.suppress(Exception):
                    await loading  # a thread cannot be cancelled; let it finish
            await state.close()
            if metrics is not None:
                metrics.flush()
            if reporting is not None and stats is not None and on_stats is not None:
                reporting.cancel()
                on_stats(stats.drain())

    app = Starlette(
        routes=[
            *_protocol_conveyor.routes(state),
            *_outcomes.routes(state),
            *_protocol_v2.routes(state),
            *_protocol_mlflow.routes(state),
            *_health.routes(state),
            *_openapi.routes(state),
        ],
        middleware=[
            Middleware(RequestContext, metrics=metrics, stats=stats),
            Middleware(_protocol_conveyor.FastPredict, state=state),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.serving = state
    return app


async def _load(
    state: ServingState,
    loader: ModelLoader,
    on_error: Callable[[BaseException], None] | None,
    on_ready: Callable[[list[LoadedModel]], None] | None,
) -> None:
    try:
        await state.load(loader)
    except Exception as err:
        if on_error is not None:
            on_error(err)
        return
    if on_ready is not None:
        on_ready([served.loaded for served in state.served()])


async def _flush_metrics(metrics: ServerMetrics, seconds: float = 1.0) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            metrics.flush()
        except Exception:  # metrics must never stop serving
            logger.exception("writing the Prometheus metrics failed")


async def _report_stats(
    stats: StatsRecorder, on_stats: Callable[[list[StatsDelta]], None], seconds: float
) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            deltas = stats.drain()
            if deltas:
                on_stats(deltas)
        except Exception:  # reporting must never stop serving
            logger.exception("reporting the rollout statistics failed")


async def _http_error(request: Request, exc: Exception) -> Response:
    """404 (no such path) and 405 (wrong method) as JSON."""
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException
        raise exc
    detail = exc.detail
    if exc.status_code == 404:
        detail = f"no endpoint at {request.url.path}; see /docs"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        detail = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
    headers = dict(exc.headers) if exc.headers else None
    return json_response({"error": detail}, exc.status_code, headers=headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    """An unexpected failure: 500 with the request id, the traceback in the log."""
    rid = request_id(request.scope)
    logger.error("unexpected error on request %s", rid, exc_info=exc)
    return json_response(
        {"error": f"internal server error (request id {rid})", "request_id": rid},
        500,
        headers={"X-Request-ID": rid},
    )
