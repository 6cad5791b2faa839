"""A PyTorch multilayer perceptron, reproducible to the byte and resumable from checkpoints."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import struct
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Final, NoReturn

from conveyor.errors import TrainingError
from conveyor.spec._base import did_you_mean
from conveyor.spec._metrics import Task
from conveyor.train._dataset import FeatureKind
from conveyor.train.algorithms._base import PICKLE_PROTOCOL, BaseAlgorithm, OnIteration
from conveyor.train.algorithms._preprocess import make_preprocessor

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from conveyor.train._checkpoints import Checkpoints

__all__ = ["MLPNetwork", "TorchMLPAlgorithm", "import_torch"]

DEFAULTS: Final[Mapping[str, Any]] = {
    "hidden_layers": [64, 32],
    "dropout": 0.1,
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "batch_size": 256,
    "epochs": 20,
    "early_stopping_patience": None,
    "checkpoint_every": 1,
}
"""Every parameter ``torch_mlp`` takes, with its default."""

PREPROCESS_FILE: Final = "preprocess.pkl"
WEIGHTS_FILE: Final = "weights.safetensors"
"""The network's weights in the safetensors layout (JSON header, raw little-endian float32)."""

_CHECKPOINT_FORMAT: Final = 1
logger = logging.getLogger("conveyor.train")


def import_torch() -> ModuleType:
    """The ``torch`` module.

    Raises:
        TrainingError: PyTorch is not installed; the message names the extra to install.
    """
    try:
        import torch
    except ImportError as err:
        raise TrainingError(
            f"algorithm 'torch_mlp' needs PyTorch ({err}): pip install 'conveyor-ml[torch]'"
        ) from err
    return torch


class TorchMLPAlgorithm(BaseAlgorithm):
    """A multilayer perceptron (ReLU, dropout, AdamW) after scaling and one-hot encoding.

    Numbers are median-imputed and standardised, categories one-hot encoded, as for linear
    models. Classification minimises cross-entropy, regression the squared error of the
    standardised target. ``params`` (all optional, see :data:`DEFAULTS`): ``hidden_layers``,
    ``dropout``, ``learning_rate``, ``weight_decay``, ``batch_size``, ``epochs``,
    ``early_stopping_patience`` (epochs without a better validation loss before stopping;
    the best epoch's weights are kept) and ``checkpoint_every`` (epochs between checkpoints).
    Each epoch reports ``train_loss`` and, with validation data, ``validation_loss``.

    Reproducible: weights, dropout and shuffling are seeded from ``seed``, deterministic
    algorithms are on and the thread count is fixed while training (``n_jobs``; ``None``
    means 1, because CPU kernels may sum in an order that depends on it), so the same data,
    parameters, seed and thread count give the same saved bytes. Training sets these
    process-global torch settings and restores them afterwards, so do not train two torch
    models in threads of one process at once.

    With ``checkpoints`` set, training saves a checkpoint every ``checkpoint_every`` epochs
    and, when one exists for the same data, parameters and seed, resumes from it: the result
    is byte-identical to an uninterrupted training. ``checkpoints`` is not saved with the model.
    """

    kind: ClassVar[str] = "torch_mlp"

    def __init__(
        self,
        *,
        task: Task,
        feature_schema: Mapping[str, FeatureKind],
        params: Mapping[str, Any] | None = None,
        seed: int = 42,
        n_jobs: int | None = None,
        checkpoints: Checkpoints | None = None,
    ) -> None:
        super().__init__(
            task=task, feature_schema=feature_schema, params=params, seed=seed, n_jobs=n_jobs
        )
        self.checkpoints = checkpoints
        self.architecture_: dict[str, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Checkpoints belong to one training run (and may hold a database connection).
        return {**self.__dict__, "checkpoints": None}

    @property
    def algorithm(self) -> str:
        """Always ``'torch_mlp'``."""
        return "torch_mlp"

    def settings(self) -> dict[str, Any]:
        """:data:`DEFAULTS` updated with ``params``, checked.

        Raises:
            TrainingError: A parameter is unknown or has a bad value.
        """
        params = dict(self.params or {})
        for name in sorted(params):
            if name not in DEFAULTS:
                raise TrainingError(
                    f"torch_mlp has no param {name!r}{did_you_mean(name, DEFAULTS)}; "
                    f"it takes {', '.join(DEFAULTS)}"
                )
        merged = {**DEFAULTS, **params}
        layers = merged["hidden_layers"]
        if not isinstance(layers, list | tuple) or not all(_positive_int(n) for n in layers):
            _bad("hidden_layers", layers, "a list of positive integers")
        merged["hidden_layers"] = list(layers)
        _number(merged, "dropout", lambda v: 0 <= v < 1, "a number in [0, 1)")
        _number(merged, "learning_rate", lambda v: v > 0, "a positive number")
        _number(merged, "weight_decay", lambda v: v >= 0, "a non-negative number")
        for name in ("batch_size", "epochs", "checkpoint_every"):
            if not _positive_int(merged[name]):
                _bad(name, merged[name], "a positive integer")
        patience = merged["early_stopping_patience"]
        if patience is not None and not _positive_int(patience):
            _bad("early_stopping_patience", patience, "a positive integer or null")
        return merged

    def _fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray[Any, Any],
        X_valid: pd.DataFrame | None,
        y_valid: np.ndarray[Any, Any] | None,
        on_iteration: OnIteration | None,
    ) -> Pipeline:
        import numpy as np
        from sklearn.pipeline import Pipeline

        torch = import_torch()
        settings = self.settings()
        if settings["early_stopping_patience"] is not None and X_valid is None:
            raise TrainingError(
                "torch_mlp's early_stopping_patience needs validation data (X_valid, y_valid)"
            )
        preprocess = make_preprocessor(self.feature_schema, scale=True, one_hot=True)
        Xt = np.asarray(preprocess.fit_transform(X), dtype=np.float32)
        Xv = None if X_valid is None else np.asarray(preprocess.transform(X_valid), np.float32)
        architecture: dict[str, Any] = {
            "inputs": int(Xt.shape[1]),
            "hidden_layers": settings["hidden_layers"],
            "outputs": 1 if self.classes_ is None else len(self.classes_),
            "dropout": float(settings["dropout"]),
            "activation": "relu",
            "target_mean": 0.0,
            "target_scale": 1.0,
        }
        if not self.is_classifier:
            # A standardised target keeps the default learning rate sensible at any scale.
            mean, scale = float(y.mean()), float(y.std()) or 1.0
            architecture.update(target_mean=mean, target_scale=scale)
            y = ((y - mean) / scale).astype(np.float32)
            y_valid = None if y_valid is None else ((y_valid - mean) / scale).astype(np.float32)
        valid = None if Xv is None or y_valid is None else (Xv, y_valid)
        with _deterministic(torch, _threads(self.n_jobs)):
            weights = _Training(self, settings, architecture, (Xt, y), valid).run(on_iteration)
        self.architecture_ = architecture
        network = MLPNetwork(architecture, weights, classifier=self.is_classifier)
        return Pipeline([("preprocess", preprocess), ("model", network)])

    def set_num_threads(self, n: int) -> None:
        """Use ``n`` threads: sets ``n_jobs`` and ``torch.set_num_threads(n)``.

        Torch's thread count is process-global: this changes it for every torch model in
        the process (one thread per worker is what a multi-worker server wants anyway).
        """
        self.n_jobs = n
        import_torch().set_num_threads(_threads(n))

    def manifest(self) -> dict[str, Any]:
        """The base manifest plus the network's ``architecture`` and torch's version."""
        manifest = super().manifest()
        manifest["architecture"] = self.architecture_
        manifest["versions"]["torch"] = _version("torch")
        return manifest

    def _save_model(self, path: Path, pipeline: Pipeline) -> None:
        preprocess, network = pipeline["preprocess"], pipeline["model"]
        (path / PREPROCESS_FILE).write_bytes(pickle.dumps(preprocess, protocol=PICKLE_PROTOCOL))
        (path / WEIGHTS_FILE).write_bytes(dump_weights(network.weights))

    def _load_model(self, path: Path) -> Pipeline:
        from sklearn.pipeline import Pipeline

        if self.architecture_ is None:
            raise TrainingError(f"{path} has no network architecture in its manifest")
        preprocess = pickle.loads((path / PREPROCESS_FILE).read_bytes())
        weights = load_weights((path / WEIGHTS_FILE).read_bytes())
        network = MLPNetwork(self.architecture_, weights, classifier=self.is_classifier)
        return Pipeline([("preprocess", preprocess), ("model", network)])

    @classmethod
    def _from_manifest(cls, manifest: Mapping[str, Any]) -> TorchMLPAlgorithm:
        model = cls(
            task=Task(manifest["task"]),
            feature_schema=manifest["feature_schema"],
            params=manifest["params"],
            seed=manifest["seed"],
        )
        model.architecture_ = manifest.get("architecture")
        return model


class MLPNetwork:
    """The trained network as a pipeline's last step, on preprocessed (numeric) arrays.

    ``predict`` returns class codes (classification) or target values; ``predict_proba``
    softmax probabilities. The torch module is built from ``weights`` on first use.
    """

    def __init__(
        self,
        architecture: Mapping[str, Any],
        weights: Mapping[str, np.ndarray[Any, Any]],
        *,
        classifier: bool,
    ) -> None:
        self.architecture = dict(architecture)
        self.weights = dict(weights)
        self.classifier = classifier
        self._module: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_module": None}

    def fit(self, X: Any, y: Any) -> MLPNetwork:
        """Not supported: train with :class:`TorchMLPAlgorithm`."""
        raise TrainingError("an MLPNetwork is trained by TorchMLPAlgorithm.fit, not refitted")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """scikit-learn's parameter protocol (for ``repr`` and inspection)."""
        return {"architecture": self.architecture, "classifier": self.classifier}

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier" if self.classifier else "regressor",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags() if self.classifier else None,
            regressor_tags=None if self.classifier else RegressorTags(),
        )

    def outputs(self, X: Any) -> np.ndarray[Any, Any]:
        """The network's raw outputs (logits, or the standardised target) as float64."""
        import numpy as np

        torch = import_torch()
        if self._module is None:
            # On "meta": building must not draw from (and so change) torch's global RNG.
            module = build_network(torch, self.architecture, device="meta")
            weights = {k: torch.from_numpy(v.copy()) for k, v in self.weights.items()}
            module.load_state_dict(weights, assign=True)
            self._module = module.eval()
        inputs = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        with torch.inference_mode():
            return np.asarray(self._module(inputs).numpy(), dtype=np.float64)

    def predict_proba(self, X: Any) -> np.ndarray[Any, Any]:
        """Class probabilities (softmax of the logits)."""
        import numpy as np

        if not self.classifier:
            raise TrainingError("predict_proba is for classification; this network regresses")
        logits = self.outputs(X)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        proba: np.ndarray[Any, Any] = exp / exp.sum(axis=1, keepdims=True)
        return proba

    def predict(self, X: Any) -> np.ndarray[Any, Any]:
        """Class codes (classification) or predicted values (regression)."""
        import numpy as np

        if self.classifier:
            return np.asarray(self.predict_proba(X).argmax(axis=1))
        scaled = self.outputs(X)[:, 0]
        mean, scale = self.architecture["target_mean"], self.architecture["target_scale"]
        return np.asarray(scaled * scale + mean)


def build_network(torch: Any, architecture: Mapping[str, Any], device: str = "cpu") -> Any:
    """An untrained ``torch.nn.Sequential`` with the architecture.

    On ``device="cpu"`` its weights are initialised from torch's global RNG; on ``"meta"``
    nothing is allocated or drawn (for loading weights with ``load_state_dict(assign=True)``).
    """
    nn = torch.nn
    layers: list[Any] = []
    width = architecture["inputs"]
    for size in architecture["hidden_layers"]:
        linear = nn.Linear(width, size, device=device)
        layers += [linear, nn.ReLU(), nn.Dropout(architecture["dropout"])]
        width = size
    layers.append(nn.Linear(width, architecture["outputs"], device=device))
    return nn.Sequential(*layers)


class _Training:
    """One training run: epochs, early stopping, checkpoints. Runs inside ``fork_rng``."""

    def __init__(
        self,
        model: TorchMLPAlgorithm,
        settings: Mapping[str, Any],
        architecture: Mapping[str, Any],
        train: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]],
        valid: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None,
    ) -> None:
        self.settings = settings
        self.architecture = architecture
        self.seed = model.seed
        self.checkpoints = model.checkpoints
        self.classifier = model.is_classifier
        self.train = train
        self.valid = valid
        self.fingerprint = _fingerprint(settings, architecture, model.seed, train, valid)

    def run(self, on_iteration: OnIteration | None) -> dict[str, np.ndarray[Any, Any]]:
        torch = import_torch()
        settings = self.settings
        torch.manual_seed(self.seed)
        network = build_network(torch, self.architecture)
        optimizer = torch.optim.AdamW(
            network.parameters(),
            lr=settings["learning_rate"],
            weight_decay=settings["weight_decay"],
        )
        generator = torch.Generator().manual_seed(self.seed)
        state: dict[str, Any] = {"epoch": 0, "best_loss": None, "bad_epochs": 0, "best": None}
        resumed = self._resume(torch, network, optimizer, generator)
        if resumed is not None:
            state = resumed
        loss_fn = torch.nn.CrossEntropyLoss() if self.classifier else torch.nn.MSELoss()
        X, y = (torch.from_numpy(part) for part in self.train)
        valid = None if self.valid is None else [torch.from_numpy(p) for p in self.valid]
        patience, batch = settings["early_stopping_patience"], settings["batch_size"]
        while state["epoch"] < settings["epochs"] and not (
            patience is not None and state["bad_epochs"] >= patience
        ):
            epoch = state["epoch"]
            network.train()
            total = 0.0
            order = torch.randperm(len(X), generator=generator)
            for start in range(0, len(X), batch):
                rows = order[start : start + batch]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(_squeeze(network(X[rows]), self.classifier), y[rows])
                loss.backward()
                optimizer.step()
                total += float(loss.item()) * len(rows)
            metrics = {"train_loss": total / len(X)}
            if valid is not None:
                network.eval()
                with torch.no_grad():
                    predicted = _squeeze(network(valid[0]), self.classifier)
                    loss_value = float(loss_fn(predicted, valid[1]).item())
                metrics["validation_loss"] = loss_value
                if state["best_loss"] is None or loss_value < state["best_loss"]:
                    best = None if patience is None else _copy(network)
                    state.update(best_loss=loss_value, bad_epochs=0, best=best)
                else:
                    state["bad_epochs"] += 1
            state["epoch"] = epoch + 1
            # Report before checkpointing: after a crash in between, the epoch is redone and
            # reported again (at least once) rather than skipped.
            if on_iteration is not None:
                on_iteration(epoch, metrics)
            every = settings["checkpoint_every"]
            if self.checkpoints is not None and state["epoch"] % every == 0:
                self._save(self.checkpoints, torch, (network, optimizer, generator), state)
        final = state["best"] if patience is not None else network.state_dict()
        return {name: tensor.detach().numpy().copy() for name, tensor in final.items()}

    def _save(
        self,
        checkpoints: Checkpoints,
        torch: Any,
        objects: tuple[Any, Any, Any],
        state: dict[str, Any],
    ) -> None:
        network, optimizer, generator = objects
        buffer = io.BytesIO()
        torch.save(
            {
                "format": _CHECKPOINT_FORMAT,
                "fingerprint": self.fingerprint,
                "state": state,
                "network": network.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
            },
            buffer,
        )
        checkpoints.save(buffer.getvalue(), state["epoch"])

    def _resume(
        self, torch: Any, network: Any, optimizer: Any, generator: Any
    ) -> dict[str, Any] | None:
        data = None if self.checkpoints is None else self.checkpoints.load()
        if data is None:
            return None
        try:
            saved = torch.load(io.BytesIO(data), weights_only=True)
        except Exception as err:  # torch raises many kinds for foreign bytes
            raise TrainingError(f"the torch_mlp checkpoint cannot be read: {err}") from err
        if saved.get("format") != _CHECKPOINT_FORMAT or saved.get("fingerprint") != (
            self.fingerprint
        ):
            logger.warning("ignoring the checkpoint: it was made with other data, params or seed")
            return None
        network.load_state_dict(saved["network"])
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        state: dict[str, Any] = saved["state"]
        logger.info("resuming from checkpoint at epoch %d", state["epoch"])
        return state


@contextmanager
def _deterministic(torch: Any, threads: int) -> Iterator[None]:
    """Fixed threads, deterministic algorithms and a private RNG; torch's restored after."""
    previous = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.use_deterministic_algorithms(previous[1], warn_only=previous[2])
        torch.set_num_threads(previous[0])


def _threads(n_jobs: int | None) -> int:
    if n_jobs is None:
        return 1
    return n_jobs if n_jobs > 0 else os.cpu_count() or 1


def _squeeze(output: Any, classifier: bool) -> Any:
    return output if classifier else output[:, 0]


def _copy(network: Any) -> dict[str, Any]:
    return {name: tensor.detach().clone() for name, tensor in network.state_dict().items()}


def _fingerprint(
    settings: Mapping[str, Any],
    architecture: Mapping[str, Any],
    seed: int,
    train: tuple[np.ndarray[Any, Any], ...],
    valid: tuple[np.ndarray[Any, Any], ...] | None,
) -> str:
    """What a checkpoint must match to be resumed: the data, settings, architecture, seed."""
    digest = hashlib.sha256()
    # checkpoint_every only decides when to save; changing it must not discard a checkpoint.
    fixed = {k: v for k, v in settings.items() if k != "checkpoint_every"}
    text = json.dumps([fixed, architecture, seed], sort_keys=True)
    digest.update(text.encode())
    for array in (*train, *(valid or ())):
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def dump_weights(weights: Mapping[str, np.ndarray[Any, Any]]) -> bytes:
    """``weights`` in the safetensors layout: u64 header size, JSON header, raw float32 data."""
    import numpy as np

    header: dict[str, Any] = {}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(weights):
        blob = np.ascontiguousarray(weights[name], dtype="<f4").tobytes()
        shape = list(np.shape(weights[name]))
        header[name] = {
            "dtype": "F32",
            "shape": shape,
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)  # the format aligns the data to 8 bytes
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def load_weights(data: bytes) -> dict[str, np.ndarray[Any, Any]]:
    """The arrays written by :func:`dump_weights`.

    Raises:
        TrainingError: The bytes are not float32 safetensors.
    """
    import numpy as np

    try:
        (size,) = struct.unpack_from("<Q", data)
        header = json.loads(data[8 : 8 + size])
        weights = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if info["dtype"] != "F32":
                raise ValueError(f"{name} has dtype {info['dtype']}, not F32")
            start, end = info["data_offsets"]
            array = np.frombuffer(data[8 + size + start : 8 + size + end], dtype="<f4")
            weights[name] = array.reshape(info["shape"]).astype(np.float32)
    except (struct.error, ValueError, KeyError, TypeError) as err:
        raise TrainingError(f"the network weights cannot be read: {err}") from err
    return weights


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _number(settings: dict[str, Any], name: str, ok: Any, expected: str) -> None:
    value = settings[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not ok(value):
        _bad(name, value, expected)


def _bad(name: str, value: Any, expected: str) -> NoReturn:
    raise TrainingError(f"torch_mlp param {name!r} is {value!r}; expected {expected}")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
