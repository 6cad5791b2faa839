"""Both model runtimes answer like the trained model, from numpy columns, on many threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.errors import RegistryError
from conveyor.serving import (
    BaseRuntime,
    NativeRuntime,
    OnnxRuntime,
    Prediction,
    columns_from_records,
)
from conveyor.spec._metrics import Task
from conveyor.train.algorithms import BaseAlgorithm

from .conftest import RegisteredModel

RUNTIMES = ("onnx", "native")


@pytest.fixture(scope="module")
def onnx_path(registered_model: RegisteredModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    path.write_bytes(registered_model.onnx)
    return path


def _make(kind: str, model: RegisteredModel, onnx_path: Path) -> BaseRuntime:
    if kind == "onnx":
        return OnnxRuntime(model.model_dir, onnx_path, threads=1)
    return NativeRuntime(model.model_dir, threads=1)


@pytest.fixture(scope="module", params=RUNTIMES)
def runtime(
    request: pytest.FixtureRequest, registered_model: RegisteredModel, onnx_path: Path
) -> BaseRuntime:
    """Each runtime, loaded: every test taking it runs once per runtime."""
    return _make(request.param, registered_model, onnx_path).load()


@pytest.fixture(scope="module")
def columns(registered_model: RegisteredModel) -> dict[str, np.ndarray[Any, Any]]:
    return columns_from_records(registered_model.rows, registered_model.feature_schema)


@pytest.fixture(scope="module")
def expected(registered_model: RegisteredModel) -> np.ndarray[Any, Any]:
    """The trained model's own probabilities for the example rows, through pandas."""
    model = BaseAlgorithm.load(registered_model.model_dir)
    frame = pd.DataFrame(registered_model.rows, columns=list(registered_model.feature_schema))
    return model.predict_proba(frame)


def test_a_runtime_describes_its_model(
    runtime: BaseRuntime, registered_model: RegisteredModel
) -> None:
    assert runtime.kind in RUNTIMES
    assert runtime.task is Task.binary_classification
    assert runtime.classes == registered_model.classes
    assert dict(runtime.feature_schema) == dict(registered_model.feature_schema)


def test_probabilities_match_the_trained_model(
    runtime: BaseRuntime,
    columns: dict[str, np.ndarray[Any, Any]],
    expected: np.ndarray[Any, Any],
    registered_model: RegisteredModel,
) -> None:
    prediction = runtime.predict(columns)
    assert isinstance(prediction, Prediction)
    assert prediction.probabilities is not None
    assert prediction.probabilities.shape == (len(registered_model.rows), 2)
    np.testing.assert_allclose(prediction.probabilities, expected, rtol=0, atol=1e-5)
    # Labels are the most probable classes, in the model's own label type.
    classes = np.asarray(registered_model.classes)
    np.testing.assert_array_equal(prediction.labels, classes[expected.argmax(axis=1)])
    assert prediction.labels.dtype == classes.dtype


def test_onnx_and_native_agree_on_the_same_columns(
    registered_model: RegisteredModel, onnx_path: Path, columns: dict[str, np.ndarray[Any, Any]]
) -> None:
    onnx = _make("onnx", registered_model, onnx_path).load().predict(columns)
    native = _make("native", registered_model, onnx_path).load().predict(columns)
    assert onnx.probabilities is not None and native.probabilities is not None
    assert np.abs(onnx.probabilities - native.probabilities).max() <= 1e-5
    np.testing.assert_array_equal(onnx.labels, native.labels)
    # The rows exercise unseen and missing categories, not only the easy cases.
    assert "ZZ" in columns["carrier"].tolist() and None in columns["dest"].tolist()


def test_one_row_and_extra_columns(
    runtime: BaseRuntime, columns: dict[str, np.ndarray[Any, Any]], expected: np.ndarray[Any, Any]
) -> None:
    one = {name: values[5:6] for name, values in columns.items()} | {"id": np.array(["x"])}
    prediction = runtime.predict(one)
    assert prediction.probabilities is not None
    np.testing.assert_allclose(prediction.probabilities, expected[5:6], rtol=0, atol=1e-5)


def test_warm_up_predicts_a_row_of_missing_values(runtime: BaseRuntime) -> None:
    prediction = runtime.warm_up()
    assert prediction.labels.shape == (1,)
    assert prediction.probabilities is not None
    np.testing.assert_allclose(prediction.probabilities.sum(axis=1), [1.0])


def test_concurrent_predictions_are_each_correct(
    runtime: BaseRuntime, columns: dict[str, np.ndarray[Any, Any]], expected: np.ndarray[Any, Any]
) -> None:
    rows = len(expected)

    def work(start: int) -> list[bool]:
        # Each thread predicts its own slices many times; any shared state would mix them up.
        results = []
        for repeat in range(20):
            lo = (start + repeat) % rows
            hi = min(rows, lo + 1 + (start % 7))
            part = {name: values[lo:hi] for name, values in columns.items()}
            proba = runtime.predict(part).probabilities
            assert proba is not None
            results.append(bool(np.allclose(proba, expected[lo:hi], rtol=0, atol=1e-5)))
        return results

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = [ok for batch in pool.map(work, range(16)) for ok in batch]
    assert len(outcomes) == 16 * 20 and all(outcomes)


def test_predict_does_not_change_its_inputs(
    runtime: BaseRuntime, columns: dict[str, np.ndarray[Any, Any]]
) -> None:
    before = {name: values.copy() for name, values in columns.items()}
    runtime.predict(columns)
    for name, values in columns.items():
        np.testing.assert_array_equal(values, before[name])


@pytest.mark.parametrize("kind", RUNTIMES)
def test_an_unloaded_runtime_says_to_load_it(
    kind: str,
    registered_model: RegisteredModel,
    onnx_path: Path,
    columns: dict[str, np.ndarray[Any, Any]],
) -> None:
    runtime = _make(kind, registered_model, onnx_path)
    with pytest.raises(RegistryError, match=r"is not loaded; call load\(\) first"):
        runtime.predict(columns)
    with pytest.raises(RegistryError, match="is not loaded"):
        _ = runtime.feature_schema


def test_a_broken_onnx_file_is_a_registry_error(
    registered_model: RegisteredModel, tmp_path: Path
) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx graph")
    with pytest.raises(RegistryError, match="onnxruntime cannot load"):
        OnnxRuntime(registered_model.model_dir, bad).load()
    with pytest.raises(RegistryError, match="cannot be read as a Conveyor model manifest"):
        NativeRuntime(tmp_path).load()
