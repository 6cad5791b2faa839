"""Model runtimes: a loaded model version that turns feature columns into predictions.

:class:`OnnxRuntime` runs a verified ONNX export with onnxruntime (fast, no pandas);
:class:`NativeRuntime` runs the model with its own library and is the fallback. Both follow
:class:`BaseRuntime`'s rules: ``load()`` does the I/O, ``predict()`` is pure and thread-safe.

>>> runtime = OnnxRuntime(folder, folder.parent / "model.onnx", threads=1).load()  # doctest: +SKIP
>>> runtime.predict({"distance": np.array([719.0]), ...}).probabilities          # doctest: +SKIP
"""

from conveyor.serving.runtimes._base import BaseRuntime, Prediction
from conveyor.serving.runtimes._native import NativeRuntime
from conveyor.serving.runtimes._onnx import OnnxRuntime

__all__ = ["BaseRuntime", "NativeRuntime", "OnnxRuntime", "Prediction"]
