"""What one worker serves: model versions, how traffic splits between them, and readiness.

Each model name is a :class:`ModelGroup`: the loaded versions (champion, challenger, a
version kept warm for rollback) and a :class:`~conveyor.deploy.Router` that picks the version
answering each request, plus an optional shadow version that gets a copy off the response
path. :meth:`ServingState.apply` swaps in a new plan (new weights, new versions) between two
requests of the event loop; requests already running finish on the version they started with.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.deploy._routing import Router, TrafficPlan
from conveyor.serving._batching import MicroBatcher
from conveyor.serving.app._cache import ResponseCache, canonical_key
from conveyor.serving.app._options import AppOptions

if TYPE_CHECKING:
    import numpy as np

    from conveyor.serving._loading import LoadedModel
    from conveyor.serving._metrics import ServerMetrics
    from conveyor.serving._predlog import PredictionLog
    from conveyor.serving._rollout_stats import StatsRecorder
    from conveyor.serving.runtimes import Prediction
    from conveyor.train._dataset import FeatureKind

__all__ = ["ModelGroup", "ModelLoader", "ModelSet", "ServedModel", "ServingState"]

logger = logging.getLogger("conveyor.serving")


@dataclass(frozen=True)
class ModelSet:
    """Loaded model versions and how traffic splits between them (see ``install``)."""

    loaded: Sequence[LoadedModel]
    traffic: Mapping[str, TrafficPlan] = field(default_factory=dict)
    sticky_header: str | None = None
    revision: str = ""


ModelLoader = Callable[[], "Sequence[LoadedModel] | ModelSet"]
"""Loads the models to serve; runs in a thread while the app starts."""

Columns = Mapping[str, "np.ndarray[Any, Any]"]


@dataclass(eq=False)
class ServedModel:
    """One loaded model version with its micro-batcher and optional response cache."""

    loaded: LoadedModel
    batcher: MicroBatcher
    cache: ResponseCache[Prediction] | None

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def version(self) -> str:
        return str(self.loaded.version)

    @property
    def number(self) -> int:
        return int(self.loaded.version)

    @property
    def feature_schema(self) -> Mapping[str, FeatureKind]:
        return self.loaded.runtime.feature_schema

    @property
    def classes(self) -> tuple[Any, ...] | None:
        return self.loaded.runtime.classes


@dataclass(eq=False)
class ModelGroup:
    """The loaded versions of one model and the router choosing between them.

    ``primary`` (the version with the most traffic; the lower number on a tie) describes the
    model in metadata, docs and validation messages.
    """

    name: str
    versions: dict[int, ServedModel]
    router: Router
    sticky_header: bytes | None = None

    @property
    def primary(self) -> ServedModel:
        weights = self.router.plan.weights
        best = max(self.versions, key=lambda v: (weights.get(v, 0.0), -v))
        return self.versions[best]

    def route(self, headers: Sequence[tuple[bytes, bytes]]) -> tuple[ServedModel, int | None]:
        """The version answering a request with these headers, and its shadow version."""
        key = None
        if self.sticky_header is not None:
            for name, value in headers:
                if name == self.sticky_header:
                    key = value.decode("latin-1")
                    break
        decision = self.router.route(key)
        return self.versions[decision.version], decision.shadow


@dataclass(eq=False)
class ServingState:
    """The models of one worker and the services around them (metrics, prediction log).

    ``status`` is ``loading`` until every model is loaded and warmed up, then ``ready``;
    ``failed`` (with ``error``) when loading raised, ``stopping`` during shutdown.
    ``degraded`` says why the server should leave the load balancer although it still answers
    (its metadata store has been unreachable too long): ``/readyz`` is 503 meanwhile.
    """

    options: AppOptions
    metrics: ServerMetrics | None = None
    prediction_log: PredictionLog | None = None
    stats: StatsRecorder | None = None
    models: dict[str, ModelGroup] = field(default_factory=dict)
    default: ModelGroup | None = None
    status: str = "loading"
    error: str | None = None
    degraded: str | None = None
    revision: str = ""
    loop: asyncio.AbstractEventLoop | None = None
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    def install(
        self,
        loaded: Sequence[LoadedModel],
        traffic: Mapping[str, TrafficPlan] | None = None,
        *,
        sticky_header: str | None = None,
        revision: str = "",
    ) -> list[ServedModel]:
        """Serve these versions, split as ``traffic`` says; readiness flips to ready.

        The first model's name is the default model. A name without a plan in ``traffic``
        sends everything to its highest loaded version. Versions already served are kept
        (with their batchers and caches); the ones left out are returned, for the caller to
        close once their requests in flight are answered.
        """
        if not loaded:
            raise ValueError("no model to serve")
        traffic = traffic or {}
        header = sticky_header.lower().encode("latin-1") if sticky_header else None
        previous = {(g.name, v): s for g in self.models.values() for v, s in g.versions.items()}
        groups: dict[str, ModelGroup] = {}
        for model in loaded:
            key = (model.name, int(model.version))
            served = previous.pop(key, None) or self._serve(model)
            group = groups.setdefault(
                model.name, ModelGroup(model.name, {}, Router(TrafficPlan.single(key[1])))
            )
            group.versions[key[1]] = served
        for name, group in groups.items():
            plan = traffic.get(name) or TrafficPlan.single(max(group.versions))
            missing = sorted(
                v for v in (*plan.weights, plan.shadow_version) if v is not None
                if v not in group.versions
            )  # fmt: skip
            if missing:
                raise ValueError(f"the traffic plan of {name} names versions not loaded: {missing}")
            group.router = Router(plan)
            group.sticky_header = header
        self.models = groups
        self.default = groups[loaded[0].name]
        self.revision = revision
        self.status = "ready"
        return list(previous.values())

    def _serve(self, model: LoadedModel) -> ServedModel:
        options = self.options
        served = ServedModel(
            loaded=model,
            batcher=MicroBatcher(
                model.runtime.predict,
                max_batch_size=options.max_batch_size,
                max_wait_ms=options.max_wait_ms,
                enabled=options.batching,
                # ONNX Runtime answers a batch in tens of microseconds: handing it to a thread
                # costs more (GIL switches add milliseconds under load) than it blocks the
                # event loop. The native fallback (pandas, milliseconds) keeps its own thread.
                inline=model.runtime.kind == "onnx",
                observe=self._batch_observer(str(model.version)),
                name=model.name,
            ),
            cache=(
                ResponseCache(options.cache_size, options.cache_ttl_seconds)
                if options.cache_size > 0
                else None
            ),
        )
        if self.metrics is not None:
            self.metrics.set_model_info(
                name=model.name, version=str(model.version), runtime=model.runtime.kind
            )
        return served

    def _batch_observer(self, version: str) -> Callable[[int, float], None] | None:
        metrics = self.metrics
        if metrics is None:
            return None

        def observe(size: int, seconds: float) -> None:
            metrics.observe_batch(model_version=version, size=size, seconds=seconds)

        return observe

    def apply_threadsafe(
        self,
        loaded: Sequence[LoadedModel],
        traffic: Mapping[str, TrafficPlan],
        *,
        sticky_header: str | None,
        revision: str,
    ) -> concurrent.futures.Future[None]:
        """From another thread: :meth:`install` on the event loop, then retire what left."""
        if self.loop is None:
            raise RuntimeError("the app has not started")

        async def apply() -> None:
            retired = self.install(loaded, traffic, sticky_header=sticky_header, revision=revision)
            await self.retire(retired)

        return asyncio.run_coroutine_threadsafe(apply(), self.loop)

    def served(self) -> list[ServedModel]:
        """Every loaded version of every model."""
        return [s for group in self.models.values() for s in group.versions.values()]

    def group(self, name: str | None) -> ModelGroup | None:
        """The model called ``name`` (the default one for None)."""
        return self.default if name is None else self.models.get(name)

    async def predict(
        self,
        served: ServedModel,
        columns: Columns,
        n_rows: int,
        request_id: str,
        shadow: int | None = None,
    ) -> Prediction:
        """The model's answer for validated columns; cached and logged as configured.

        With ``shadow`` (a version of the same model), that version predicts the same rows
        after this answer is returned; its answer is only logged and compared.

        Raises:
            Exception: whatever the model raised (the caller answers 500).
        """
        start = time.perf_counter()
        prediction = await self._predict(served, columns, n_rows)
        latency_ms = (time.perf_counter() - start) * 1000
        if self.prediction_log is not None:
            self._log(served, columns, prediction, latency_ms, n_rows, request_id, False)
        if self.stats is not None:
            self.stats.scores(served.number, prediction, shadow=False)
        if shadow is not None:
            group = self.models.get(served.name)
            target = group.versions.get(shadow) if group is not None else None
            if target is not None and target is not served:
                task = asyncio.get_running_loop().create_task(
                    self._shadow(target, columns, n_rows, request_id, prediction)
                )
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        return prediction

    async def _predict(self, served: ServedModel, columns: Columns, n_rows: int) -> Prediction:
        key = None
        prediction = None
        if served.cache is not None:
            key = canonical_key(served.version, columns)
            prediction = served.cache.get(key)
        if prediction is None:
            prediction = await served.batcher.submit(columns, n_rows)
            if served.cache is not None and key is not None:
                served.cache.put(key, prediction)
        return prediction

    async def _shadow(
        self,
        served: ServedModel,
        columns: Columns,
        n_rows: int,
        request_id: str,
        answered: Prediction,
    ) -> None:
        start = time.perf_counter()
        try:
            prediction = await self._predict(served, columns, n_rows)
        except Exception:
            logger.exception("shadow version %s failed on request %s", served.version, request_id)
            if self.stats is not None:
                self.stats.request(served.number, 500, time.perf_counter() - start, shadow=True)
            return
        seconds = time.perf_counter() - start
        if self.prediction_log is not None:
            self._log(served, columns, prediction, seconds * 1000, n_rows, request_id, True)
        if self.stats is not None:
            self.stats.request(served.number, 200, seconds, shadow=True)
            self.stats.scores(served.number, prediction, shadow=True)
            self.stats.compare(served.number, answered, prediction)

    def _log(
        self,
        served: ServedModel,
        columns: Columns,
        prediction: Prediction,
        latency_ms: float,
        n_rows: int,
        request_id: str,
        shadow: bool,
    ) -> None:
        assert self.prediction_log is not None
        self.prediction_log.append(
            request_id=request_id,
            timestamp=time.time(),
            model_name=served.name,
            model_version=served.number,
            inputs=columns,
            outputs=_outputs(prediction),
            latency_ms=latency_ms,
            n_rows=n_rows,
            shadow=shadow,
        )

    async def load(self, loader: ModelLoader) -> None:
        """Run ``loader`` in a thread and install its models; a failure is recorded, then raised."""
        try:
            loaded = await asyncio.get_running_loop().run_in_executor(None, loader)
            if isinstance(loaded, ModelSet):
                self.install(
                    loaded.loaded,
                    loaded.traffic,
                    sticky_header=loaded.sticky_header,
                    revision=loaded.revision,
                )
            else:
                self.install(loaded)
        except Exception as err:
            logger.exception("loading the models failed")
            self.status = "failed"
            self.error = f"{type(err).__name__}: {err}"
            raise

    async def retire(self, versions: Sequence[ServedModel]) -> None:
        """Close versions no longer served, once their queued predictions are answered."""
        for served in versions:
            await served.batcher.close()
            if self.metrics is not None:
                self.metrics.clear_model_info(name=served.name, version=served.version)

    async def close(self) -> None:
        """Finish queued predictions (shadows included), then flush and close the log."""
        self.status = "stopping"
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        for served in self.served():
            await served.batcher.close()
        if self.prediction_log is not None:
            log = self.prediction_log
            timeout = self.options.log_close_timeout_seconds
            stats = await asyncio.get_running_loop().run_in_executor(None, log.close, timeout)
            logger.info("prediction log closed: %s", stats)


def _outputs(prediction: Prediction) -> dict[str, np.ndarray[Any, Any]]:
    """The prediction log's output columns: ``out_prediction`` and ``out_proba``."""
    if prediction.probabilities is None:
        return {"prediction": prediction.labels}
    return {"prediction": prediction.labels, "proba": prediction.probabilities}
