"""Adaptive micro-batching: concurrent requests for one model share one ``predict`` call.

At low load a request runs at once (no added latency). While a prediction is running, new
requests queue; the queue is sent as one batch when the running call finishes, when it holds
``max_batch_size`` rows, or ``max_wait_ms`` after its first request, whichever comes first.
Each model has its own single-thread executor, so the event loop never blocks on a slow model
and a model is never called from two threads at once.

Fast models (``inline=True``, ONNX Runtime) are called on the event loop itself: the requests
that became ready in the same loop iteration are sent as one batch right after it, with no
waiting and no thread hand-off (which costs milliseconds of GIL switching under load).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from conveyor.serving.runtimes import Prediction

__all__ = ["BatchObserver", "MicroBatcher"]

Columns = Mapping[str, "np.ndarray[Any, Any]"]
BatchObserver = Callable[[int, float], None]
"""Called on the event loop after each model call with (rows, seconds)."""


@dataclass(eq=False)
class _Request:
    columns: Columns
    n_rows: int
    future: asyncio.Future[Prediction]


@dataclass(eq=False)
class _Outcome:
    results: list[Prediction | BaseException] = field(default_factory=list)
    seconds: float = 0.0


class MicroBatcher:
    """Coalesces concurrent ``submit`` calls for one model into batched ``predict`` calls.

    Args:
        predict: The model's prediction function: feature columns -> ``Prediction``.
        max_batch_size: Most rows sent to the model in one call (a larger request is sent
            alone, whole).
        max_wait_ms: Longest a request waits for a running call before its batch is sent.
        enabled: When false every request is predicted on its own.
        inline: Predict on the event loop (for models that answer in microseconds), batching
            the requests that arrive in the same loop iteration.
        observe: Told the size and duration of every model call (for metrics).
        name: Names the worker thread (``conveyor-model-<name>``).

    ``submit`` must be called from one event loop. The batcher never reorders or mixes rows:
    each caller gets exactly the predictions of its own rows. When a batched call raises,
    its requests are retried one by one so that only the request that fails gets the error.
    """

    def __init__(
        self,
        predict: Callable[[Columns], Prediction],
        *,
        max_batch_size: int = 64,
        max_wait_ms: float = 2.0,
        enabled: bool = True,
        inline: bool = False,
        observe: BatchObserver | None = None,
        name: str = "model",
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, not {max_batch_size}")
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max(0.0, max_wait_ms) / 1000
        self.enabled = enabled
        self.inline = inline
        self._soon: asyncio.Handle | None = None
        self._observe = observe
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"conveyor-model-{name}")
        self._pending: list[_Request] = []
        self._pending_rows = 0
        self._in_flight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._idle: asyncio.Event | None = None
        self._closed = False

    async def submit(self, columns: Columns, n_rows: int) -> Prediction:
        """The model's prediction for these rows (``n_rows`` rows in every column).

        Raises:
            RuntimeError: the batcher is closed.
            Exception: whatever the model raised for these rows.
        """
        if self._closed:
            raise RuntimeError("the micro-batcher is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Prediction] = loop.create_future()
        request = _Request(columns, n_rows, future)
        if not self.enabled:
            self._send(loop, [request])
            return await future
        if self._pending and self._pending_rows + n_rows > self.max_batch_size:
            self._flush(loop)  # keep batches within max_batch_size where possible
        self._pending.append(request)
        self._pending_rows += n_rows
        if self.inline:
            if self._pending_rows >= self.max_batch_size:
                self._flush(loop)
            elif self._soon is None:  # after the requests already ready in this iteration
                self._soon = loop.call_soon(self._flush, loop)
            return await future
        if self._in_flight == 0 or self._pending_rows >= self.max_batch_size:
            self._flush(loop)
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait, self._flush, loop)
        return await future

    async def close(self) -> None:
        """Send what is queued, wait for every running call, then stop the worker thread."""
        self._closed = True
        loop = asyncio.get_running_loop()
        if self._pending:
            self._flush(loop)
        while self._in_flight:
            self._idle = asyncio.Event()
            await self._idle.wait()
        await loop.run_in_executor(None, self._executor.shutdown)

    @property
    def queued_rows(self) -> int:
        """Rows waiting for a batch to be sent."""
        return self._pending_rows

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        batch, self._pending, self._pending_rows = self._pending, [], 0
        self._send(loop, batch)

    def _send(self, loop: asyncio.AbstractEventLoop, batch: list[_Request]) -> None:
        self._in_flight += 1
        if self.inline:
            outcome: asyncio.Future[_Outcome] = loop.create_future()
            try:
                outcome.set_result(self._run(batch))
            except Exception as err:  # pragma: no cover - _run catches the model's errors
                outcome.set_exception(err)
            self._finish(loop, batch, outcome)
            return
        done = loop.run_in_executor(self._executor, self._run, batch)
        done.add_done_callback(lambda outcome: self._finish(loop, batch, outcome))

    def _run(self, batch: list[_Request]) -> _Outcome:
        """Runs in the model's thread: concatenate, predict once, split back per request."""
        start = time.perf_counter()
        outcome = _Outcome()
        if len(batch) == 1:
            try:
                outcome.results.append(self._predict(batch[0].columns))
            except Exception as err:
                outcome.results.append(err)
        else:
            try:
                whole = self._predict(_concatenate([r.columns for r in batch]))
                offset = 0
                for request in batch:
                    outcome.results.append(_rows(whole, offset, offset + request.n_rows))
                    offset += request.n_rows
            except Exception:
                outcome.results = []
                for request in batch:  # isolate the request that makes the model fail
                    try:
                        outcome.results.append(self._predict(request.columns))
                    except Exception as err:
                        outcome.results.append(err)
        outcome.seconds = time.perf_counter() - start
        return outcome

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Request],
        done: asyncio.Future[_Outcome],
    ) -> None:
        self._in_flight -= 1
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is not None:
            results: list[Prediction | BaseException] = [error] * len(batch)
        else:
            outcome = done.result()
            results = outcome.results
            if self._observe is not None:
                self._observe(sum(r.n_rows for r in batch), outcome.seconds)
        for request, result in zip(batch, results, strict=True):
            if request.future.done():  # the client went away
                continue
            if isinstance(result, BaseException):
                request.future.set_exception(result)
            else:
                request.future.set_result(result)
        if self._pending and self._in_flight == 0:
            self._flush(loop)  # those requests waited for this call: send them now
        if self._in_flight == 0 and self._idle is not None:
            self._idle.set()


def _concatenate(parts: list[Columns]) -> dict[str, np.ndarray[Any, Any]]:
    import numpy as np

    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _rows(prediction: Prediction, start: int, stop: int) -> Prediction:
    probabilities = prediction.probabilities
    return type(prediction)(
        prediction.labels[start:stop],
        None if probabilities is None else probabilities[start:stop],
    )
