"""ONNX converters skl2onnx lacks: one-hot encoding with unknown values, double-output trees."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Final

__all__ = ["convert_one_hot_encoder", "convert_simple_imputer", "tree_ensemble_attributes"]

_MODES: Final = {
    "BRANCH_LEQ": 0,
    "BRANCH_LT": 1,
    "BRANCH_GTE": 2,
    "BRANCH_GT": 3,
    "BRANCH_EQ": 4,
    "BRANCH_NEQ": 5,
}
_POST_TRANSFORMS: Final = {"NONE": 0, "SOFTMAX": 1, "LOGISTIC": 2, "SOFTMAX_ZERO": 3, "PROBIT": 4}
_SUM: Final = 1


def convert_one_hot_encoder(scope: Any, operator: Any, container: Any) -> None:
    """A fitted OneHotEncoder on string columns, unknown and infrequent values included.

    skl2onnx's converter fails on infrequent categories of a multi-column input and rejects
    unknown values unless ``handle_unknown="ignore"``. Here each column's strings map to an
    output position (infrequent and, with ``"infrequent_if_exist"``, unknown values to the
    infrequent column; other unknown values to none), then to one-hot columns. Other
    encoders (numeric inputs, ``drop``) go to skl2onnx's converter.
    """
    import numpy as np
    from onnx import TensorProto
    from skl2onnx.common.data_types import StringTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.operator_converters.one_hot_encoder import convert_sklearn_one_hot_encoder

    encoder = operator.raw_operator
    if (
        not all(isinstance(item.type, StringTensorType) for item in operator.inputs)
        or getattr(encoder, "drop_idx_", None) is not None
        or encoder.handle_unknown not in ("ignore", "infrequent_if_exist")
    ):
        convert_sklearn_one_hot_encoder(scope, operator, container)
        return
    if len(operator.inputs) == 1:
        features = operator.inputs[0].full_name
    else:
        features = concatenate_variables(scope, operator.inputs, container)
    infrequent_all = getattr(encoder, "infrequent_categories_", None)
    columns = []
    for i, categories in enumerate(encoder.categories_):
        infrequent = None if infrequent_all is None else infrequent_all[i]
        rare = set() if infrequent is None else {str(value) for value in infrequent}
        frequent = [str(value) for value in categories if str(value) not in rare]
        rare_position = len(frequent) if rare else -1
        unknown = rare_position if encoder.handle_unknown == "infrequent_if_exist" else -1
        positions = {value: index for index, value in enumerate(frequent)}
        positions.update(dict.fromkeys(rare, rare_position))
        depth = len(frequent) + bool(rare)

        index = scope.get_unique_variable_name("column_index")
        container.add_initializer(index, TensorProto.INT64, [1], [i])
        column = scope.get_unique_variable_name("column")
        container.add_node(
            "Gather", [features, index], [column], axis=1, name=_name(scope, "Gather")
        )
        codes = scope.get_unique_variable_name("codes")
        container.add_node(
            "LabelEncoder",
            [column],
            [codes],
            keys_strings=list(positions),
            values_int64s=list(positions.values()),
            default_int64=unknown,
            op_domain="ai.onnx.ml",
            op_version=2,
            name=_name(scope, "LabelEncoder"),
        )
        arange = scope.get_unique_variable_name("positions")
        container.add_initializer(arange, TensorProto.INT64, [depth], np.arange(depth).tolist())
        hot = scope.get_unique_variable_name("one_hot")
        container.add_node("Equal", [codes, arange], [hot], name=_name(scope, "Equal"))
        columns.append(hot)
    joined = scope.get_unique_variable_name("one_hot_all")
    container.add_node("Concat", columns, [joined], axis=1, name=_name(scope, "Concat"))
    to = operator.outputs[0].type.to_onnx_type().tensor_type.elem_type
    container.add_node(
        "Cast", [joined], [operator.outputs[0].full_name], to=to, name=_name(scope, "Cast")
    )


def tree_ensemble_attributes(attrs: dict[str, Any]) -> tuple[dict[str, Any], list[float]]:
    """ai.onnx.ml 5 ``TreeEnsemble`` attributes from ``TreeEnsembleRegressor`` ones.

    TreeEnsemble computes in the input's type, so double features give double outputs
    (TreeEnsembleRegressor's output is always float32). Returns the attributes and the base
    values, which TreeEnsemble lacks and the caller adds.

    Raises:
        ValueError: A leaf has several targets.
    """
    import numpy as np
    from onnx.numpy_helper import from_array

    weights: dict[tuple[int, int], tuple[int, float]] = {}
    for tree, node, target, weight in zip(
        attrs["target_treeids"],
        attrs["target_nodeids"],
        attrs["target_ids"],
        attrs["target_weights"],
        strict=True,
    ):
        if (tree, node) in weights:
            raise ValueError(f"leaf {node} of tree {tree} has several targets")
        weights[tree, node] = (target, float(weight))
    by_tree: dict[int, dict[int, int]] = defaultdict(dict)
    for position, (tree, node) in enumerate(
        zip(attrs["nodes_treeids"], attrs["nodes_nodeids"], strict=True)
    ):
        by_tree[tree][node] = position

    out: dict[str, list[Any]] = defaultdict(list)

    def leaf(tree: int, node: int) -> int:
        target, weight = weights.get((tree, node), (0, 0.0))
        out["leaf_targetids"].append(target)
        out["leaf_weights"].append(weight)
        return len(out["leaf_weights"]) - 1

    def branch(tree: int, position: int, feature: int, mode: int, split: float) -> int:
        index = len(out["nodes_featureids"])
        out["nodes_featureids"].append(feature)
        out["nodes_modes"].append(mode)
        out["nodes_splits"].append(split)
        out["nodes_missing_value_tracks_true"].append(
            attrs["nodes_missing_value_tracks_true"][position] if position >= 0 else 0
        )
        for side in ("true", "false"):
            out[f"nodes_{side}nodeids"].append(0)
            out[f"nodes_{side}leafs"].append(0)
        return index

    def visit(tree: int, node: int) -> tuple[int, bool]:
        position = by_tree[tree][node]
        mode = attrs["nodes_modes"][position]
        if mode == "LEAF":
            return leaf(tree, node), True
        index = branch(
            tree,
            position,
            attrs["nodes_featureids"][position],
            _MODES[mode],
            float(attrs["nodes_values"][position]),
        )
        for side in ("true", "false"):
            child, is_leaf = visit(tree, attrs[f"nodes_{side}nodeids"][position])
            out[f"nodes_{side}nodeids"][index] = child
            out[f"nodes_{side}leafs"][index] = int(is_leaf)
        return index, False

    roots = []
    for tree in sorted(by_tree):
        root, is_leaf = visit(tree, min(by_tree[tree]))
        if is_leaf:
            # A one-leaf tree: a split whose both sides lead to that leaf.
            index = branch(tree, -1, 0, _MODES["BRANCH_LEQ"], 0.0)
            for side in ("true", "false"):
                out[f"nodes_{side}nodeids"][index] = root
                out[f"nodes_{side}leafs"][index] = 1
            root = index
        roots.append(root)

    def tensor(name: str, values: list[Any], dtype: Any) -> Any:
        return from_array(np.asarray(values, dtype=dtype), name=name)

    result = {
        "aggregate_function": _SUM,
        "post_transform": _POST_TRANSFORMS[attrs.get("post_transform", "NONE")],
        "n_targets": int(attrs.get("n_targets", 1)),
        "tree_roots": roots,
        "leaf_targetids": out["leaf_targetids"],
        "leaf_weights": tensor("leaf_weights", out["leaf_weights"], np.float64),
        "nodes_featureids": out["nodes_featureids"],
        "nodes_modes": tensor("nodes_modes", out["nodes_modes"], np.uint8),
        "nodes_splits": tensor("nodes_splits", out["nodes_splits"], np.float64),
        "nodes_missing_value_tracks_true": out["nodes_missing_value_tracks_true"],
        "nodes_truenodeids": out["nodes_truenodeids"],
        "nodes_trueleafs": out["nodes_trueleafs"],
        "nodes_falsenodeids": out["nodes_falsenodeids"],
        "nodes_falseleafs": out["nodes_falseleafs"],
    }
    return result, [float(value) for value in attrs.get("base_values", [])]


def _name(scope: Any, op_type: str) -> str:
    name: str = scope.get_unique_operator_name(op_type)
    return name


def convert_simple_imputer(scope: Any, operator: Any, container: Any) -> None:
    """A fitted SimpleImputer on double columns with NaN as the missing value.

    skl2onnx writes an ai.onnx.ml Imputer node, which onnxruntime runs on float32 only;
    ``Where(IsNaN(x), statistics, x)`` keeps doubles. Other imputers go to skl2onnx.
    """
    import math

    import numpy as np
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer

    imputer = operator.raw_operator
    missing = imputer.missing_values
    if not (
        all(isinstance(item.type, DoubleTensorType) for item in operator.inputs)
        and isinstance(missing, float)
        and math.isnan(missing)
        and not getattr(imputer, "add_indicator", False)
    ):
        convert_sklearn_imputer(scope, operator, container)
        return
    if len(operator.inputs) == 1:
        features = operator.inputs[0].full_name
    else:
        features = concatenate_variables(scope, operator.inputs, container)
    # Columns that were empty in training are imputed with 0 (``keep_empty_features``).
    statistics = np.nan_to_num(np.asarray(imputer.statistics_, dtype=np.float64), nan=0.0)
    values = scope.get_unique_variable_name("statistics")
    container.add_initializer(values, TensorProto.DOUBLE, [len(statistics)], statistics.tolist())
    is_nan = scope.get_unique_variable_name("is_nan")
    container.add_node("IsNaN", [features], [is_nan], name=_name(scope, "IsNaN"))
    container.add_node(
        "Where",
        [is_nan, values, features],
        [operator.outputs[0].full_name],
        name=_name(scope, "Where"),
    )
