"""Preprocessing that is part of every model, so serving applies exactly what training did."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from conveyor.errors import TrainingError
from conveyor.train._dataset import FeatureKind

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer

__all__ = ["DATETIME_PARTS", "coerce_frame", "expand_datetimes", "make_preprocessor"]

DATETIME_PARTS: Final = ("year", "month", "day_of_week", "hour")
"""What a datetime feature becomes: one numeric column per part."""

MAX_CATEGORIES: Final = 64
"""Most columns (one-hot) or codes (ordinal) one categorical feature may take."""

MIN_FREQUENCY: Final = 5
"""Categories seen in fewer training rows are merged into one 'infrequent' category."""


def coerce_frame(X: Any, schema: Mapping[str, FeatureKind]) -> pd.DataFrame:
    """A DataFrame with the schema's columns in order and one dtype per kind.

    Numeric and boolean columns become float64 (missing as NaN), categorical ones object
    arrays of strings (missing as NaN), datetimes ``datetime64`` (naive, UTC). Accepts a
    DataFrame with at least those columns or an array with exactly those columns in order.

    Raises:
        TrainingError: Columns are missing, or an array has the wrong number of columns.
    """
    import numpy as np
    import pandas as pd

    names = list(schema)
    if isinstance(X, pd.DataFrame):
        missing = [name for name in names if name not in X.columns]
        if missing:
            raise TrainingError(f"input lacks feature columns {missing}; the model needs {names}")
        frame = X[names]
    else:
        array = np.asarray(X, dtype=object if not isinstance(X, np.ndarray) else None)
        if array.ndim != 2 or array.shape[1] != len(names):
            raise TrainingError(
                f"input has shape {array.shape}; the model needs 2 dimensions and "
                f"{len(names)} columns ({', '.join(names)})"
            )
        frame = pd.DataFrame(array, columns=names)
    # Plain arrays, so the input's index (e.g. rows picked by a split) cannot realign them.
    columns: dict[str, Any] = {}
    for name, kind in schema.items():
        values = frame[name]
        if kind in ("numeric", "boolean"):
            numbers = pd.to_numeric(values.astype(object), errors="coerce")
            columns[name] = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        elif kind == "datetime":
            times = pd.to_datetime(values, utc=True, errors="coerce").dt.tz_localize(None)
            columns[name] = times.to_numpy()
        else:
            as_object = values.astype(object)
            columns[name] = np.where(as_object.notna(), as_object.astype(str), np.nan)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))


def expand_datetimes(X: pd.DataFrame) -> np.ndarray[Any, Any]:
    """Year, month, day of week and hour of each datetime column, as float64 (NaN if missing)."""
    import numpy as np
    import pandas as pd

    parts = []
    for name in X.columns:
        values = pd.to_datetime(X[name])
        for part in DATETIME_PARTS:
            parts.append(getattr(values.dt, part).to_numpy(dtype=np.float64, na_value=np.nan))
    return np.column_stack(parts) if parts else np.empty((len(X), 0))


def _datetime_names(_transformer: Any, names: Any) -> list[str]:
    return [f"{name}_{part}" for name in names for part in DATETIME_PARTS]


def make_preprocessor(
    schema: Mapping[str, FeatureKind], *, scale: bool, one_hot: bool
) -> ColumnTransformer:
    """The ColumnTransformer for ``schema``; its output columns are numeric first.

    Output order: numeric and boolean features, then datetime parts, then categorical ones
    (so a LightGBM model can name the last columns as categorical).

    Args:
        schema: Feature kinds by column name.
        scale: Median imputation and standard scaling of numbers (linear models, neural
            networks). Without it numbers pass through unchanged: trees split on raw values
            and LightGBM treats NaN as missing natively.
        one_hot: One-hot categories (most-frequent imputation first, unknown values ignored);
            otherwise ordinal codes, with -1 for missing and unknown values (LightGBM reads
            negative codes as missing).
    """
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        OneHotEncoder,
        OrdinalEncoder,
        StandardScaler,
    )

    numeric = [name for name, kind in schema.items() if kind in ("numeric", "boolean")]
    datetimes = [name for name, kind in schema.items() if kind == "datetime"]
    categorical = [name for name, kind in schema.items() if kind == "categorical"]

    def numbers() -> Any:
        if not scale:
            return "passthrough"
        return Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("scale", StandardScaler()),
            ]
        )

    if one_hot:
        categories: Any = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
                (
                    "encode",
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist",
                        min_frequency=MIN_FREQUENCY,
                        max_categories=MAX_CATEGORIES,
                        sparse_output=False,
                        dtype=np.float64,
                    ),
                ),
            ]
        )
    else:
        categories = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=-1,
            encoded_missing_value=-1,
            min_frequency=MIN_FREQUENCY,
            max_categories=MAX_CATEGORIES,
            dtype=np.float64,
        )
    expand = FunctionTransformer(expand_datetimes, feature_names_out=_datetime_names)
    steps: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps.append(("num", numbers(), numeric))
    if datetimes:
        dt: Any = Pipeline([("expand", expand), ("numbers", numbers())]) if scale else expand
        steps.append(("dt", dt, datetimes))
    if categorical:
        steps.append(("cat", categories, categorical))
    return ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0)
