"""The HTTP layer: one Starlette app speaking Conveyor's JSON, Open Inference Protocol V2 and
MLflow's scoring protocol, with probes, metrics, OpenAPI docs and micro-batching.

>>> app = create_app([loaded_model], options=AppOptions(cache_size=1024))  # doctest: +SKIP
"""

from conveyor.serving.app._app import create_app
from conveyor.serving.app._options import AppOptions
from conveyor.serving.app._state import ModelLoader, ServedModel, ServingState

__all__ = ["AppOptions", "ModelLoader", "ServedModel", "ServingState", "create_app"]
