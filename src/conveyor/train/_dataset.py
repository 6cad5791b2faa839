"""The training frame: feature columns, target and time values read from a dataset snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from conveyor.errors import TrainingError
from conveyor.spec._base import did_you_mean
from conveyor.spec._metrics import Task

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from conveyor.spec._model import ModelSpec

__all__ = ["FeatureKind", "TrainingFrame", "load_training_frame"]

FeatureKind = Literal["numeric", "categorical", "boolean", "datetime"]
"""How a feature column is preprocessed (see ``conveyor.train.algorithms``)."""


@dataclass(frozen=True, eq=False)
class TrainingFrame:
    """What a model is trained on, read from one dataset snapshot.

    Attributes:
        X: The feature columns, in the declared ``features.include`` order or sorted by name.
        y: The target values, one per row.
        feature_schema: Each feature's kind, in the column order of ``X``.
        classes: The sorted labels for classification tasks, else None.
        time: The time column's values (``datetime64``) if the dataset has one, else None.
        groups: The split's ``group_column`` values if it has one, else None.
    """

    X: pd.DataFrame
    y: np.ndarray[Any, Any]
    feature_schema: Mapping[str, FeatureKind]
    classes: tuple[Any, ...] | None = None
    time: np.ndarray[Any, Any] | None = None
    groups: np.ndarray[Any, Any] | None = None

    def __len__(self) -> int:
        return len(self.y)


def load_training_frame(
    parquet: Path, spec: ModelSpec, *, time_column: str | None
) -> TrainingFrame:
    """Read the features, target and time values the model spec asks for.

    Args:
        parquet: A dataset snapshot (Parquet file or folder).
        spec: The model spec: task, target, features and split.
        time_column: The dataset's time column (``dataset.time_column``); the split's own
            ``time_column`` wins when set. It is not a feature unless listed in ``include``.

    Raises:
        TrainingError: The target, a feature, the time or the group column is missing; the
            target has missing values; a classification target has fewer than two classes;
            a regression target is not numeric.
    """
    import pyarrow.parquet as pq

    schema = pq.read_schema(parquet) if Path(parquet).is_file() else _dataset_schema(parquet)
    columns = list(schema.names)
    time_column = spec.split.time_column or time_column
    group_column = spec.split.group_column
    _require(spec.target, columns, "target column", "model.target")
    for name, key in ((time_column, "time column"), (group_column, "model.split.group_column")):
        if name is not None:
            _require(name, columns, key, key)
    if spec.features.include is not None:
        for name in spec.features.include:
            _require(name, columns, "feature column", "model.features.include")
        features = list(spec.features.include)
    else:
        dropped = {spec.target, time_column, *spec.features.exclude}
        features = sorted(
            name
            for name in columns
            if name not in dropped and _kind(schema.field(name).type) != "datetime"
        )
    if not features:
        raise TrainingError(
            f"no feature columns are left in {parquet} once the target {spec.target!r}, "
            "the time column and model.features.exclude are taken out; list some in "
            "model.features.include"
        )
    kinds = {name: _kind(schema.field(name).type) for name in features}

    needed = list(dict.fromkeys([*features, spec.target, time_column, group_column]))
    table = pq.read_table(parquet, columns=[name for name in needed if name is not None])
    frame = table.to_pandas()
    y, classes = _target(frame[spec.target], spec)
    time = None
    if time_column is not None:
        time = _datetimes(frame[time_column]).to_numpy()
    groups = frame[group_column].to_numpy() if group_column is not None else None
    return TrainingFrame(
        X=frame[features].reset_index(drop=True),
        y=y,
        feature_schema=MappingProxyType(kinds),
        classes=classes,
        time=time,
        groups=groups,
    )


def _dataset_schema(path: Path) -> pa.Schema:
    import pyarrow.dataset as ds

    return ds.dataset(path, format="parquet").schema


def _require(name: str, columns: list[str], what: str, key: str) -> None:
    if name not in columns:
        raise TrainingError(
            f"{what} {name!r} (from {key}) is not in the dataset; its columns are "
            + ", ".join(repr(column) for column in columns)
            + did_you_mean(name, columns)
        )


def _kind(arrow_type: pa.DataType) -> FeatureKind:
    import pyarrow as pa

    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return "numeric"
    if pa.types.is_decimal(arrow_type):
        return "numeric"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "datetime"
    return "categorical"


def _datetimes(values: pd.Series) -> pd.Series:
    import pandas as pd

    converted = pd.to_datetime(values, utc=True)
    return converted.dt.tz_localize(None)


def _target(
    values: pd.Series, spec: ModelSpec
) -> tuple[np.ndarray[Any, Any], tuple[Any, ...] | None]:
    import numpy as np
    import pandas as pd

    missing = int(values.isna().sum())
    if missing:
        raise TrainingError(
            f"target {spec.target!r} is missing in {missing} of {len(values)} rows; drop or "
            "fill those rows before training (a schema check with quarantine can do it)"
        )
    if spec.task is Task.regression:
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            raise TrainingError(
                f"task is regression but target {spec.target!r} is not numeric "
                f"(dtype {values.dtype}); use a classification task or a numeric target"
            )
        return values.to_numpy(dtype=np.float64), None
    y = values.to_numpy()
    if y.dtype.kind not in "biu":
        y = y.astype(object)
    classes = tuple(np.unique(y).tolist())
    if len(classes) < 2:
        raise TrainingError(
            f"target {spec.target!r} has a single class ({classes[0]!r}) in all {len(y)} rows; "
            "a classifier needs at least two"
        )
    if spec.task is Task.binary_classification and len(classes) > 2:
        raise TrainingError(
            f"task is binary_classification but target {spec.target!r} has {len(classes)} "
            f"classes ({', '.join(repr(c) for c in classes[:10])}); use "
            "multiclass_classification"
        )
    return y, classes
