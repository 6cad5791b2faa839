"""MicroBatcher: concurrent callers share model calls, and each gets exactly its own rows."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest

from conveyor.serving._batching import MicroBatcher
from conveyor.serving.runtimes import Prediction


class Model:
    """A model whose answer identifies the row: label = id * 10, probabilities from the id."""

    def __init__(self, delay: float = 0.0, fail_on: float | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.calls: list[int] = []
        self.threads: set[str] = set()

    def predict(self, columns: Any) -> Prediction:
        ids = np.asarray(columns["id"], dtype=float)
        self.calls.append(len(ids))
        self.threads.add(threading.current_thread().name)
        if self.fail_on is not None and self.fail_on in ids:
            raise ValueError(f"cannot predict id {self.fail_on}")
        time.sleep(self.delay)
        p = (ids % 7) / 7
        return Prediction(ids * 10, np.column_stack([1 - p, p]))


def columns(ids: list[float]) -> dict[str, np.ndarray]:
    return {"id": np.array(ids, dtype=float), "name": np.array([str(i) for i in ids], dtype=object)}


async def call(batcher: MicroBatcher, ids: list[float]) -> tuple[list[float], Prediction]:
    return ids, await batcher.submit(columns(ids), len(ids))


def test_many_concurrent_callers_each_get_their_own_rows() -> None:
    model = Model(delay=0.002)
    batches: list[int] = []

    async def main() -> list[tuple[list[float], Prediction]]:
        batcher = MicroBatcher(
            model.predict, max_batch_size=32, max_wait_ms=5, observe=lambda n, s: batches.append(n)
        )
        requests = [[float(i * 100 + j) for j in range(1 + i % 3)] for i in range(300)]
        results = await asyncio.gather(*(call(batcher, ids) for ids in requests))
        await batcher.close()
        return results

    results = asyncio.run(main())
    for ids, prediction in results:
        assert prediction.labels.tolist() == [i * 10 for i in ids]
        p = (np.array(ids) % 7) / 7
        assert np.allclose(prediction.probabilities, np.column_stack([1 - p, p]))
    assert sum(model.calls) == sum(len(ids) for ids, _ in results)
    assert len(model.calls) < len(results) / 3  # batched: far fewer calls than requests
    assert max(model.calls) <= 32
    assert batches == model.calls
    assert len(model.threads) == 1 and model.threads.pop().startswith("conveyor-model-")


def test_a_request_alone_runs_at_once() -> None:
    model = Model()

    async def main() -> float:
        batcher = MicroBatcher(model.predict, max_wait_ms=1000)
        start = time.perf_counter()
        await call(batcher, [1.0])
        elapsed = time.perf_counter() - start
        await batcher.close()
        return elapsed

    assert asyncio.run(main()) < 0.5  # not the 1 s max_wait


def test_the_loop_stays_free_while_the_model_runs() -> None:
    model = Model(delay=0.3)

    async def main() -> int:
        batcher = MicroBatcher(model.predict)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        await call(batcher, [1.0])
        ticker.cancel()
        await batcher.close()
        return ticks

    assert asyncio.run(main()) >= 10


def test_disabled_batching_calls_the_model_once_per_request() -> None:
    model = Model(delay=0.001)

    async def main() -> None:
        batcher = MicroBatcher(model.predict, enabled=False)
        results = await asyncio.gather(*(call(batcher, [float(i)]) for i in range(20)))
        for ids, prediction in results:
            assert prediction.labels.tolist() == [ids[0] * 10]
        await batcher.close()

    asyncio.run(main())
    assert model.calls == [1] * 20


def test_a_failing_request_does_not_fail_its_batch_mates() -> None:
    model = Model(delay=0.002, fail_on=13.0)

    async def main() -> list[Any]:
        batcher = MicroBatcher(model.predict, max_wait_ms=20)
        outcomes = await asyncio.gather(
            *(call(batcher, [float(i)]) for i in range(30)), return_exceptions=True
        )
        await batcher.close()
        return outcomes

    outcomes = asyncio.run(main())
    failed = [i for i, o in enumerate(outcomes) if isinstance(o, BaseException)]
    assert failed == [13]
    assert "13" in str(outcomes[13])
    assert all(o[1].labels.tolist() == [i * 10] for i, o in enumerate(outcomes) if i != 13)


def test_close_answers_what_is_queued_then_refuses() -> None:
    model = Model(delay=0.01)

    async def main() -> None:
        batcher = MicroBatcher(model.predict, max_wait_ms=1000)
        pending = [asyncio.create_task(call(batcher, [float(i)])) for i in range(10)]
        await asyncio.sleep(0)
        await batcher.close()
        assert all(t.done() and not t.exception() for t in pending)
        with pytest.raises(RuntimeError, match="closed"):
            await call(batcher, [1.0])

    asyncio.run(main())


def test_inline_batching_answers_on_the_loop_with_each_callers_own_rows() -> None:
    model = Model()
    batches: list[int] = []

    async def main() -> list[tuple[list[float], Prediction]]:
        batcher = MicroBatcher(
            model.predict, max_batch_size=32, inline=True, observe=lambda n, s: batches.append(n)
        )
        requests = [[float(i * 100 + j) for j in range(1 + i % 3)] for i in range(300)]
        results = await asyncio.gather(*(call(batcher, ids) for ids in requests))
        await batcher.close()
        return results

    results = asyncio.run(main())
    for ids, prediction in results:
        assert prediction.labels.tolist() == [i * 10 for i in ids]
    # The requests ready in one loop iteration share a call; none waits for a timer.
    assert sum(model.calls) == sum(len(ids) for ids, _ in results)
    assert len(model.calls) < len(results) / 3 and max(model.calls) <= 32
    assert batches == model.calls
    assert model.threads == {"MainThread"}  # no hand-off to a model thread
