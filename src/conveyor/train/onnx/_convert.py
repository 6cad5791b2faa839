"""A fitted pipeline (preprocessing and estimator) as ONNX bytes, at the native precision."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from conveyor.train._dataset import FeatureKind
from conveyor.train.onnx._operators import (
    convert_one_hot_encoder,
    convert_simple_imputer,
    tree_ensemble_attributes,
)

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

__all__ = ["MISSING_CATEGORY", "TARGET_OPSET", "convert_pipeline", "unsupported_reason"]

MISSING_CATEGORY: Final = "\x1fconveyor:missing"
"""What a missing categorical value is fed as: ONNX string tensors cannot hold None."""

TARGET_OPSET: Final = {"": 17, "ai.onnx.ml": 3}
"""ai.onnx.ml 3 is the first with double-precision tree thresholds and leaf weights."""

DOUBLE_TREES_OPSET: Final = {"": 17, "ai.onnx.ml": 5}
"""ai.onnx.ml 5's TreeEnsemble outputs doubles; its older tree operators are deprecated."""

_LARGE_THRESHOLD: Final = 1e30
_TREE_OPS: Final = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
_DOUBLE_ATTRIBUTES: Final = ("nodes_values", "base_values", "class_weights", "target_weights")


def unsupported_reason(schema: Mapping[str, FeatureKind], pipeline: Pipeline) -> str | None:
    """Why this pipeline cannot become ONNX, or None if it may (conversion still decides)."""
    datetimes = [name for name, kind in schema.items() if kind == "datetime"]
    if datetimes:
        return (
            f"datetime features {datetimes} have no ONNX conversion (their year, month, "
            "day-of-week and hour parts are computed in Python)"
        )
    if len(pipeline.steps) != 2 or pipeline.steps[0][0] != "preprocess":
        return f"the pipeline {[name for name, _ in pipeline.steps]} is not preprocess + model"
    return None


def convert_pipeline(pipeline: Pipeline, schema: Mapping[str, FeatureKind]) -> bytes:
    """The whole pipeline as a serialized ONNX model.

    One graph input per feature, in schema order and named after it, shaped ``(rows, 1)``:
    double for numeric and boolean features, string for categorical ones (missing values as
    :data:`MISSING_CATEGORY`). Outputs: ``label`` (class codes, int64) and ``probabilities``
    (double) for classifiers, ``variable`` (double) for regressors.

    Raises:
        Exception: Whatever skl2onnx raises for an estimator it cannot convert.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
    from sklearn.pipeline import Pipeline

    double_trees = _register_converters()
    estimator = _finite_thresholds(pipeline.steps[-1][1])
    # A copy whose categorical imputers treat the MISSING_CATEGORY string as missing:
    # skl2onnx imputes strings only when ``missing_values`` is a string, not NaN.
    preprocess = _with_string_missing_values(pipeline.steps[0][1], schema)
    whole = Pipeline([("preprocess", preprocess), ("model", estimator)])
    inputs = [
        (name, (StringTensorType if kind == "categorical" else DoubleTensorType)([None, 1]))
        for name, kind in schema.items()
    ]
    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "predict_proba") else None
    # A fixed graph name: skl2onnx's default is a random UUID, and equal models must give
    # equal bytes.
    model = convert_sklearn(
        whole,
        name=type(estimator).__name__,
        initial_types=inputs,
        options=options,
        target_opset=TARGET_OPSET,
    )
    if isinstance(estimator, double_trees):
        # skl2onnx targets ai.onnx.ml 3 at most; the TreeEnsemble nodes need 5.
        for opset in model.opset_import:
            if opset.domain == "ai.onnx.ml":
                opset.version = DOUBLE_TREES_OPSET["ai.onnx.ml"]
    data: bytes = model.SerializeToString()
    return data


def _finite_thresholds(estimator: Any) -> Any:
    """``estimator``, or a copy whose infinite tree thresholds are finite but as large.

    scikit-learn trees may split at ``+inf`` (every number goes left); skl2onnx's threshold
    adjustment for double inputs never ends on it.
    """
    import numpy as np

    def trees(model: Any) -> list[Any]:
        if hasattr(model, "tree_"):
            return [model.tree_]
        found = np.ravel(np.asarray(getattr(model, "estimators_", []), dtype=object))
        return [item.tree_ for item in found if hasattr(item, "tree_")]

    if all(np.isfinite(tree.threshold).all() for tree in trees(estimator)):
        return estimator
    estimator = copy.deepcopy(estimator)
    for tree in trees(estimator):
        thresholds = tree.threshold  # a view of the tree's node array
        thresholds[np.isposinf(thresholds)] = _LARGE_THRESHOLD
    return estimator


def _with_string_missing_values(preprocess: Any, schema: Mapping[str, FeatureKind]) -> Any:
    from sklearn.impute import SimpleImputer

    categorical = {name for name, kind in schema.items() if kind == "categorical"}
    preprocess = copy.deepcopy(preprocess)
    for _, transformer, columns in preprocess.transformers_:
        if not isinstance(columns, list) or not set(columns) <= categorical:
            continue
        steps = getattr(transformer, "steps", [(None, transformer)])
        for _, step in steps:
            if isinstance(step, SimpleImputer):
                step.missing_values = MISSING_CATEGORY
    return preprocess


@functools.cache
def _register_converters() -> tuple[type[Any], ...]:
    """Teach skl2onnx LightGBM, XGBoost and unknown categories (once: its registry is global).

    Returns the estimator classes whose converter needs :data:`DOUBLE_TREES_OPSET`.
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from skl2onnx.shape_calculators.one_hot_encoder import (
        calculate_sklearn_one_hot_encoder_output_shapes,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    update_registered_converter(
        SimpleImputer,
        "SklearnSimpleImputer",
        calculate_sklearn_imputer_output_shapes,
        convert_simple_imputer,
    )
    update_registered_converter(
        OneHotEncoder,
        "SklearnOneHotEncoder",
        calculate_sklearn_one_hot_encoder_output_shapes,
        convert_one_hot_encoder,
    )
    double_trees: tuple[type[Any], ...] = ()

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    try:
        import lightgbm
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    except ImportError:
        pass
    else:
        # LightGBM compares float64 features with float64 thresholds: keep both double.
        lgbm = _precise(convert_lightgbm, float32_features=False)
        update_registered_converter(
            lightgbm.LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            lgbm,
            options=classifier_options,
        )
        update_registered_converter(
            lightgbm.LGBMRegressor,
            "LightGbmLGBMRegressor",
            calculate_linear_regressor_output_shapes,
            _precise(convert_lightgbm, float32_features=False, double_output=True),
        )
        double_trees += (lightgbm.LGBMRegressor,)
    try:
        import xgboost
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    except ImportError:
        pass
    else:
        # XGBoost casts features to float32 and keeps float32 thresholds: do the same.
        xgb = _precise(convert_xgboost, float32_features=True)
        update_registered_converter(
            xgboost.XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            xgb,
            options=classifier_options,
        )
        update_registered_converter(
            xgboost.XGBRegressor,
            "XGBoostXGBRegressor",
            calculate_linear_regressor_output_shapes,
            xgb,
        )
    return double_trees


def _precise(converter: Any, *, float32_features: bool, double_output: bool = False) -> Any:
    """``converter`` with its tree ensembles computing as the native library does.

    onnxmltools writes thresholds and leaf weights as float32 attributes and compares float32
    features. Here the tree nodes get double features, thresholds and weights
    (``*_as_tensor`` attributes of ai.onnx.ml 3) or, with ``float32_features``, features
    cast to float32 first. With ``double_output``, regressors become ai.onnx.ml 5
    TreeEnsemble nodes, which also sum the trees into a double output. The converter's own
    float32 results are cast to the double outputs the shape calculators declare.
    """

    def convert(scope: Any, operator: Any, container: Any) -> None:
        proxy = _TreePrecision(container, scope, operator, float32_features, double_output)
        converter(scope, operator, proxy)

    return convert


class _TreePrecision:
    """A converter container that rewrites tree-ensemble nodes and casts final outputs."""

    def __init__(
        self,
        container: Any,
        scope: Any,
        operator: Any,
        float32_features: bool,
        double_output: bool,
    ) -> None:
        from skl2onnx.common.data_types import DoubleTensorType

        self._container = container
        self._scope = scope
        self._float32_features = float32_features
        self._double_output = double_output
        self._doubles = {
            output.full_name
            for output in operator.outputs
            if isinstance(output.type, DoubleTensorType)
        }

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(
        self, op_type: str, inputs: Any, outputs: Any, op_domain: str = "", **attrs: Any
    ) -> None:
        from onnx import TensorProto

        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        if op_type == "TreeEnsembleRegressor" and self._double_output:
            self._tree_ensemble(inputs, outputs[0], attrs)
            return
        if op_type in _TREE_OPS:
            if self._float32_features:
                as_float = self._scope.get_unique_variable_name("features_float32")
                self._cast(inputs[0], as_float, TensorProto.FLOAT)
                inputs[0] = as_float
            else:
                _double_attributes(attrs)
        casts = []
        for i, name in enumerate(outputs):
            if name in self._doubles:
                outputs[i] = self._scope.get_unique_variable_name(f"{name}_float32")
                casts.append((outputs[i], name))
        self._container.add_node(op_type, inputs, outputs, op_domain=op_domain, **attrs)
        for source, target in casts:
            self._cast(source, target, TensorProto.DOUBLE)

    def _tree_ensemble(self, inputs: list[str], output: str, attrs: dict[str, Any]) -> None:
        from onnx import TensorProto

        attributes, base_values = tree_ensemble_attributes(attrs)
        name = self._scope.get_unique_operator_name("TreeEnsemble")
        if not any(base_values):
            self._container.add_node(
                "TreeEnsemble",
                inputs,
                [output],
                op_domain="ai.onnx.ml",
                op_version=3,  # raised to 5 after conversion,
                name=name,
                **attributes,
            )
            return
        summed = self._scope.get_unique_variable_name("trees")
        self._container.add_node(
            "TreeEnsemble",
            inputs,
            [summed],
            op_domain="ai.onnx.ml",
            op_version=3,
            name=name,
            **attributes,
        )
        base = self._scope.get_unique_variable_name("base_values")
        self._container.add_initializer(base, TensorProto.DOUBLE, [len(base_values)], base_values)
        self._container.add_node(
            "Add", [summed, base], [output], name=self._scope.get_unique_operator_name("Add")
        )

    def _cast(self, source: str, target: str, to: int) -> None:
        name = self._scope.get_unique_operator_name("Cast")
        self._container.add_node("Cast", [source], [target], name=name, to=to)


def _double_attributes(attrs: dict[str, Any]) -> None:
    import numpy as np
    from onnx.numpy_helper import from_array

    for key in _DOUBLE_ATTRIBUTES:
        if key in attrs:
            values = np.asarray(attrs.pop(key), dtype=np.float64)
            attrs[f"{key}_as_tensor"] = from_array(values, name=f"{key}_as_tensor")
