"""The PyTorch MLP adapter: learning, reports, byte-identical saves, checkpoint resumption."""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import logsumexp
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from conveyor.errors import TrainingError
from conveyor.spec._metrics import Task
from conveyor.spec._model import ModelSpec
from conveyor.train._checkpoints import MemoryCheckpoints
from conveyor.train._dataset import FeatureKind
from conveyor.train.algorithms import BaseAlgorithm, TorchMLPAlgorithm, build_algorithm
from conveyor.train.algorithms._preprocess import coerce_frame
from conveyor.train.algorithms._torch import WEIGHTS_FILE, dump_weights, load_weights

SCHEMA: dict[str, FeatureKind] = {
    "size": "numeric",
    "colour": "categorical",
    "flag": "boolean",
    "when": "datetime",
}
PARAMS = {"hidden_layers": [16, 8], "batch_size": 32, "epochs": 6, "learning_rate": 0.01}


def synthetic(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """Features of every kind and a target driven by ``size`` and ``colour``."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
            "flag": rng.random(n) > 0.5,
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), "s"),
        }
    )
    y = X["size"] * 2 + 2 * (X["colour"] == "red") + rng.normal(scale=0.1, size=n)
    return X, y.to_numpy()


def targets(task: Task, y: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if task is Task.regression:
        return y
    if task is Task.binary_classification:
        return y > 0.5
    return np.where(y > 1.5, "high", np.where(y < -0.5, "low", "mid")).astype(object)


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def mlp(task: Task = Task.binary_classification, **params: Any) -> TorchMLPAlgorithm:
    return TorchMLPAlgorithm(task=task, feature_schema=SCHEMA, params={**PARAMS, **params})


@pytest.fixture(autouse=True)
def torch_globals_unchanged() -> Iterator[None]:
    """Training must leave torch's process-global settings and RNG as it found them."""
    threads = torch.get_num_threads()
    rng = torch.get_rng_state()
    yield
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize("task", list(Task), ids=str)
def test_learns_every_task_and_reloads_identically(task: Task, tmp_path: Path) -> None:
    X, raw = synthetic()
    y = targets(task, raw)
    iterations: list[tuple[int, dict[str, float]]] = []
    model = mlp(task, epochs=15)
    model.fit(
        X[:400],
        y[:400],
        X_valid=X[400:500],
        y_valid=y[400:500],
        on_iteration=lambda i, metrics: iterations.append((i, metrics)),
    )
    predicted = model.predict(X[500:])
    if task is Task.regression:
        assert predicted.dtype == np.float64
        assert np.corrcoef(predicted, y[500:])[0, 1] > 0.95
        with pytest.raises(TrainingError, match="regressor"):
            model.predict_proba(X[500:])
    else:
        assert (predicted == y[500:]).mean() > 0.85
        proba = model.predict_proba(X[500:])
        assert proba.shape == (100, len(model.classes_ or ()))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        np.testing.assert_array_equal(predicted, np.array(model.classes_)[proba.argmax(axis=1)])

    assert [i for i, _ in iterations] == list(range(15))
    assert set(iterations[0][1]) == {"train_loss", "validation_loss"}
    for name in ("train_loss", "validation_loss"):
        assert iterations[-1][1][name] < iterations[0][1][name]

    model.save(tmp_path / "m")
    assert set(digests(tmp_path / "m")) == {"manifest.json", "preprocess.pkl", WEIGHTS_FILE}
    loaded = BaseAlgorithm.load(tmp_path / "m")
    assert isinstance(loaded, TorchMLPAlgorithm)
    np.testing.assert_array_equal(loaded.predict(X[500:]), predicted)
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["architecture"]["hidden_layers"] == [16, 8]
    assert manifest["architecture"]["inputs"] == 9  # size, flag, 4 datetime parts, 3 colours
    assert manifest["versions"]["torch"] == torch.__version__


def test_pipeline_is_a_scaling_preprocessor_and_the_network() -> None:
    X, raw = synthetic(n=100)
    model = mlp(epochs=1).fit(X, raw > 0.5)
    pipeline = model.pipeline_
    assert isinstance(pipeline, Pipeline)
    assert [name for name, _ in pipeline.steps] == ["preprocess", "model"]
    assert isinstance(pipeline["preprocess"], ColumnTransformer)
    assert "StandardScaler" in str(pipeline["preprocess"].transformers_[0][1])
    assert pipeline["model"].architecture["outputs"] == 2


def test_pickled_adapter_predicts_the_same_without_its_checkpoints() -> None:
    X, raw = synthetic(n=100)
    model = mlp(epochs=1)
    model.checkpoints = MemoryCheckpoints()
    model.fit(X, raw > 0.5)
    model.predict(X)  # builds and caches the torch module, which is not pickled
    copy = pickle.loads(pickle.dumps(model))
    assert copy.checkpoints is None
    assert model.checkpoints is not None
    np.testing.assert_array_equal(copy.predict_proba(X), model.predict_proba(X))


def test_missing_values_and_unseen_categories_are_imputed() -> None:
    X, raw = synthetic()
    X_train = X.copy()
    X_train.loc[::7, "size"] = np.nan
    X_train.loc[::5, "colour"] = None
    model = mlp().fit(X_train, raw > 0.5)
    odd = X[:20].copy()
    odd["colour"] = "purple"
    odd["size"] = np.nan
    odd["when"] = None
    proba = model.predict_proba(odd)
    assert proba.shape == (20, 2)
    assert np.isfinite(proba).all()


def save_trained(folder: Path) -> None:
    """Train with dropout, shuffling and validation, and save."""
    X, raw = synthetic()
    y = targets(Task.multiclass_classification, raw)
    model = mlp(Task.multiclass_classification, dropout=0.3)
    model.fit(X[:500], y[:500], X_valid=X[500:], y_valid=y[500:]).save(folder)


TRAIN_AND_SAVE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from test_torch import save_trained
    save_trained(Path(sys.argv[2]))
    """
)


def test_same_data_params_and_seed_give_byte_identical_files(tmp_path: Path) -> None:
    save_trained(tmp_path / "a")
    save_trained(tmp_path / "b")
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    changed = mlp(Task.multiclass_classification, dropout=0.3)
    changed.seed = 7
    X, raw = synthetic()
    y = targets(Task.multiclass_classification, raw)
    changed.fit(X[:500], y[:500], X_valid=X[500:], y_valid=y[500:]).save(tmp_path / "c")
    assert digests(tmp_path / "a")[WEIGHTS_FILE] != digests(tmp_path / "c")[WEIGHTS_FILE]


@pytest.mark.slow
def test_another_process_saves_the_same_bytes(tmp_path: Path) -> None:
    # Another hash seed: anything depending on string hashes (set order) would differ.
    save_trained(tmp_path / "here")
    subprocess.run(
        [sys.executable, "-c", TRAIN_AND_SAVE, str(Path(__file__).parent), str(tmp_path / "there")],
        check=True,
        env={"PYTHONHASHSEED": "3", "PATH": ""},
    )
    assert digests(tmp_path / "here") == digests(tmp_path / "there")


class Interrupted(Exception):
    """Stands for the process dying after some epoch."""


def fit_until(model: TorchMLPAlgorithm, stop_after: int | None) -> list[int]:
    """Fit on the synthetic data; raise Interrupted once epoch ``stop_after`` is reported."""
    X, raw = synthetic()
    y = raw > 0.5
    epochs: list[int] = []

    def on_iteration(epoch: int, metrics: dict[str, float]) -> None:
        epochs.append(epoch)
        if epoch == stop_after:
            raise Interrupted

    model.fit(X[:500], y[:500], X_valid=X[500:], y_valid=y[500:], on_iteration=on_iteration)
    return epochs


@pytest.mark.parametrize(("every", "resumed_at"), [(1, 3), (2, 2)])
def test_interrupted_training_resumes_to_the_same_bytes(
    every: int, resumed_at: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    params = {"dropout": 0.2, "early_stopping_patience": 10, "checkpoint_every": every}
    whole = mlp(**params)
    assert fit_until(whole, None) == list(range(6))
    whole.save(tmp_path / "whole")

    checkpoints = MemoryCheckpoints()
    first = mlp(**params)
    first.checkpoints = checkpoints
    with pytest.raises(Interrupted):
        fit_until(first, stop_after=3)
    assert checkpoints.epoch == resumed_at

    again = mlp(**params)  # a fresh adapter, as in a restarted process
    again.checkpoints = checkpoints
    with caplog.at_level(logging.INFO, logger="conveyor.train"):
        assert fit_until(again, None) == list(range(resumed_at, 6))
    assert f"resuming from checkpoint at epoch {resumed_at}" in caplog.messages
    again.save(tmp_path / "resumed")
    assert digests(tmp_path / "resumed") == digests(tmp_path / "whole")
    assert "checkpoints" not in again.manifest()


def test_a_checkpoint_of_other_data_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    checkpoints = MemoryCheckpoints()
    other = TorchMLPAlgorithm(
        task=Task.binary_classification, feature_schema=SCHEMA, params=PARAMS, seed=1
    )
    other.checkpoints = checkpoints
    fit_until(other, None)
    model = mlp()
    model.checkpoints = checkpoints
    with caplog.at_level(logging.INFO, logger="conveyor.train"):
        assert fit_until(model, None) == list(range(6))
    assert any("ignoring the checkpoint" in message for message in caplog.messages)


def test_early_stopping_keeps_the_best_epoch() -> None:
    X, raw = synthetic(n=300)
    y = raw > 0.5
    reported: list[float] = []
    # A large network, a high rate, few rows: validation loss soon stops improving.
    model = mlp(
        hidden_layers=[128, 128],
        dropout=0.0,
        learning_rate=0.05,
        epochs=200,
        early_stopping_patience=3,
    )
    model.fit(
        X[:100],
        y[:100],
        X_valid=X[100:],
        y_valid=y[100:],
        on_iteration=lambda i, metrics: reported.append(metrics["validation_loss"]),
    )
    best = int(np.argmin(reported))
    assert len(reported) == best + 4 < 200
    # The kept weights are the best epoch's: their validation loss is the lowest reported.
    assert model.pipeline_ is not None
    Xt = model.pipeline_["preprocess"].transform(coerce_frame(X[100:], SCHEMA))
    logits = model.pipeline_["model"].outputs(Xt)
    loss = np.mean(logsumexp(logits, axis=1) - logits[np.arange(200), y[100:].astype(int)])
    assert loss == pytest.approx(reported[best], rel=1e-4)

    with pytest.raises(TrainingError, match="needs validation data"):
        mlp(early_stopping_patience=2).fit(X, y)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"hiden_layers": [4]}, r"no param 'hiden_layers'; did you mean 'hidden_layers'\?"),
        ({"optimizer": "sgd"}, "no param 'optimizer'; it takes hidden_layers, dropout"),
        ({"hidden_layers": [4, 0]}, "'hidden_layers' is \\[4, 0\\]; expected a list"),
        ({"dropout": 1.0}, "'dropout' is 1.0; expected a number in"),
        ({"learning_rate": "fast"}, "'learning_rate' is 'fast'"),
        ({"epochs": 2.5}, "'epochs' is 2.5; expected a positive integer"),
        ({"early_stopping_patience": 0}, "'early_stopping_patience' is 0"),
    ],
)
def test_bad_params_are_explained(params: dict[str, Any], message: str) -> None:
    X, raw = synthetic(n=50)
    with pytest.raises(TrainingError, match=message):
        mlp(**params).fit(X, raw > 0.5)


def test_set_num_threads_after_loading(tmp_path: Path) -> None:
    X, raw = synthetic(n=200)
    model = mlp(Task.regression, epochs=2)
    model.n_jobs = 2
    model.fit(X, raw).save(tmp_path / "m")
    loaded = BaseAlgorithm.load(tmp_path / "m")
    before = torch.get_num_threads()
    try:
        loaded.set_num_threads(1)
        assert torch.get_num_threads() == 1
        assert loaded.n_jobs == 1
        np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-6)
    finally:
        torch.set_num_threads(before)


def test_weights_file_is_safetensors_layout() -> None:
    weights = {"b": np.arange(3, dtype=np.float32), "a.weight": np.ones((2, 3), np.float32)}
    data = dump_weights(weights)
    size = int.from_bytes(data[:8], "little")
    assert (8 + size) % 8 == 0
    header = json.loads(data[8 : 8 + size])
    assert header["a.weight"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    loaded = load_weights(data)
    assert loaded.keys() == weights.keys()
    for name, array in weights.items():
        np.testing.assert_array_equal(loaded[name], array)
    with pytest.raises(TrainingError, match="cannot be read"):
        load_weights(b"\x01")


def test_without_torch_the_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes ``import torch`` fail
    spec = ModelSpec.model_validate({"task": "regression", "target": "t", "algorithm": "torch_mlp"})
    with pytest.raises(TrainingError, match=r"pip install 'conveyor-ml\[torch\]'"):
        build_algorithm(spec, SCHEMA)
    X, raw = synthetic(n=50)
    with pytest.raises(TrainingError, match=r"pip install 'conveyor-ml\[torch\]'"):
        mlp(Task.regression).fit(X, raw)


def test_build_algorithm_makes_a_seeded_torch_adapter() -> None:
    spec = ModelSpec.model_validate(
        {"task": "regression", "target": "t", "algorithm": "torch_mlp", "split": {"seed": 3}}
    )
    model = build_algorithm(spec, SCHEMA, n_jobs=1)
    assert isinstance(model, TorchMLPAlgorithm)
    assert (model.algorithm, model.seed, model.n_jobs, model.checkpoints) == (
        "torch_mlp",
        3,
        1,
        None,
    )
