"""What one worker serves: the loaded models, their batchers and caches, and readiness."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.serving._batching import MicroBatcher
from conveyor.serving.app._cache import ResponseCache, canonical_key
from conveyor.serving.app._options import AppOptions

if TYPE_CHECKING:
    import numpy as np

    from conveyor.serving._loading import LoadedModel
    from conveyor.serving._metrics import ServerMetrics
    from conveyor.serving._predlog import PredictionLog
    from conveyor.serving.runtimes import Prediction
    from conveyor.train._dataset import FeatureKind

__all__ = ["ModelLoader", "ServedModel", "ServingState"]

logger = logging.getLogger("conveyor.serving")

ModelLoader = Callable[[], Sequence["LoadedModel"]]
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
    def feature_schema(self) -> Mapping[str, FeatureKind]:
        return self.loaded.runtime.feature_schema

    @property
    def classes(self) -> tuple[Any, ...] | None:
        return self.loaded.runtime.classes


@dataclass(eq=False)
class ServingState:
    """The models of one worker and the services around them (metrics, prediction log).

    ``status`` is ``loading`` until every model is loaded and warmed up, then ``ready``;
    ``failed`` (with ``error``) when loading raised, ``stopping`` during shutdown.
    """

    options: AppOptions
    metrics: ServerMetrics | None = None
    prediction_log: PredictionLog | None = None
    models: dict[str, ServedModel] = field(default_factory=dict)
    default: ServedModel | None = None
    status: str = "loading"
    error: str | None = None

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    def install(self, loaded: Sequence[LoadedModel]) -> None:
        """Serve these models (the first is the default); readiness flips to ready."""
        if not loaded:
            raise ValueError("no model to serve")
        options = self.options
        for model in loaded:
            served = ServedModel(
                loaded=model,
                batcher=MicroBatcher(
                    model.runtime.predict,
                    max_batch_size=options.max_batch_size,
                    max_wait_ms=options.max_wait_ms,
                    enabled=options.batching,
                    # ONNX Runtime answers a batch in tens of microseconds: handing it to a
                    # thread costs more (GIL switches add milliseconds under load) than it
                    # blocks the event loop. The native fallback (pandas, milliseconds) keeps
                    # its own thread.
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
            self.models[model.name] = served
            if self.metrics is not None:
                self.metrics.set_model_info(
                    name=model.name, version=str(model.version), runtime=model.runtime.kind
                )
        self.default = self.models[loaded[0].name]
        self.status = "ready"

    def _batch_observer(self, version: str) -> Callable[[int, float], None] | None:
        metrics = self.metrics
        if metrics is None:
            return None

        def observe(size: int, seconds: float) -> None:
            metrics.observe_batch(model_version=version, size=size, seconds=seconds)

        return observe

    def find(self, name: str | None, version: str | None = None) -> ServedModel | None:
        """The model called ``name`` (the default one for None), if it has that version."""
        served = self.default if name is None else self.models.get(name)
        if served is None or (version is not None and version != served.version):
            return None
        return served

    async def predict(
        self, served: ServedModel, columns: Columns, n_rows: int, request_id: str
    ) -> Prediction:
        """The model's answer for validated columns; cached and logged as configured.

        Raises:
            Exception: whatever the model raised (the caller answers 500).
        """
        start = time.perf_counter()
        key = None
        prediction = None
        if served.cache is not None:
            key = canonical_key(served.version, columns)
            prediction = served.cache.get(key)
        if prediction is None:
            prediction = await served.batcher.submit(columns, n_rows)
            if served.cache is not None and key is not None:
                served.cache.put(key, prediction)
        if self.prediction_log is not None:
            self.prediction_log.append(
                request_id=request_id,
                timestamp=time.time(),
                model_name=served.name,
                model_version=int(served.loaded.version),
                inputs=columns,
                outputs=_outputs(prediction),
                latency_ms=(time.perf_counter() - start) * 1000,
                n_rows=n_rows,
            )
        return prediction

    async def load(self, loader: ModelLoader) -> None:
        """Run ``loader`` in a thread and install its models; a failure is recorded, then raised."""
        try:
            loaded = await asyncio.get_running_loop().run_in_executor(None, loader)
            self.install(loaded)
        except Exception as err:
            logger.exception("loading the models failed")
            self.status = "failed"
            self.error = f"{type(err).__name__}: {err}"
            raise

    async def close(self) -> None:
        """Finish queued predictions, then flush and close the prediction log."""
        self.status = "stopping"
        for served in self.models.values():
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
