"""The row checks of ``schema.columns`` as a pandera schema, and its failures as row positions.

pandera is the engine for the value checks (nullable, min, max, allowed, pattern). Two row
checks are not pandera's: ``type`` is decided while reading each value as its declared type
(:mod:`._cast`), and ``unique`` must hold across the whole file, so DuckDB finds the
duplicates (:mod:`._duckdb`).

Measured on the 2-core machine (250,000-row batch, 4 checked columns): ``validate(lazy=True)``
takes 0.07 s with no failure, 0.1 s at 1% failing values, 0.24 s at 10% and 0.8 s at 50%, so
``failure_cases`` is fast enough and no hand-written masks are needed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from conveyor.errors import DataValidationError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from conveyor.spec import ColumnSpec

__all__ = ["CHECK_ORDER", "RowSchema", "row_check_names"]

CHECK_ORDER = ("type", "nullable", "min", "max", "allowed", "pattern", "unique")
"""Row checks in the order they are listed, for reports and for the reasons of one row."""


def row_check_names(spec: ColumnSpec) -> list[str]:
    """The row checks ``spec`` asks for, in :data:`CHECK_ORDER` (``type`` always applies)."""
    asked = {
        "type": True,
        "nullable": not spec.nullable,
        "min": spec.min is not None,
        "max": spec.max is not None,
        "allowed": spec.allowed is not None,
        "pattern": spec.pattern is not None,
        "unique": spec.unique,
    }
    return [name for name in CHECK_ORDER if asked[name]]


def _fullmatch(values: pd.Series, *, pattern: str) -> pd.Series:
    return values.str.fullmatch(pattern)


class RowSchema:
    """A pandera ``DataFrameSchema`` for the declared columns, with our name for each check.

    The frame it validates holds the columns already read as their declared types, with a
    ``RangeIndex``; failures come back as positions in that frame.
    """

    def __init__(self, columns: Mapping[str, ColumnSpec]) -> None:
        import pandera.pandas as pa

        self._specs = dict(columns)
        self._names: dict[str, list[str]] = {}
        pandera_columns = {}
        for name, spec in columns.items():
            checks: list[pa.Check] = []
            names: list[str] = []
            if spec.min is not None:
                checks.append(pa.Check.ge(spec.min))
                names.append("min")
            if spec.max is not None:
                checks.append(pa.Check.le(spec.max))
                names.append("max")
            if spec.allowed is not None:
                checks.append(pa.Check.isin(list(spec.allowed)))
                names.append("allowed")
            if spec.pattern is not None:
                fullmatch = functools.partial(_fullmatch, pattern=spec.pattern)
                checks.append(pa.Check(fullmatch, name="pattern"))
                names.append("pattern")
            pandera_columns[name] = pa.Column(checks=checks, nullable=spec.nullable, name=name)
            self._names[name] = names
        self.schema = pa.DataFrameSchema(pandera_columns)

    def failures(self, frame: pd.DataFrame) -> dict[tuple[str, str], npt.NDArray[np.int64]]:
        """Positions in ``frame`` that broke each ``(column, check)``; checks with none left out.

        Raises:
            DataValidationError: a check could not be evaluated (e.g. a regular expression the
                string engine rejects); that is a mistake in the spec, not in the data.
        """
        import numpy as np
        import pandera.errors

        if not self._names:
            return {}
        try:
            self.schema.validate(frame, lazy=True, inplace=True)
        except pandera.errors.SchemaErrors as err:
            cases = err.failure_cases
        else:
            return {}
        raised = cases[cases["index"].isna()]
        if len(raised):
            first = raised.iloc[0]
            column = str(first["column"])
            check = self._check_name(column, first["check"], first["check_number"])
            value = getattr(self._specs[column], check, None)
            shown = f" {value!r}" if isinstance(value, str) else ""
            raise DataValidationError(
                f"schema.columns.{column}.{check}:{shown} cannot be evaluated: "
                f"{first['failure_case']}; fix the spec"
            )
        found: dict[tuple[str, str], npt.NDArray[np.int64]] = {}
        groups = cases.groupby(["column", "check", "check_number"], dropna=False, sort=False)
        for (column, check, number), group in groups:
            name = self._check_name(str(column), check, number)
            positions = np.unique(group["index"].to_numpy(dtype=np.int64))
            key = (str(column), name)
            found[key] = positions if key not in found else np.union1d(found[key], positions)
        return found

    def _check_name(self, column: str, check: object, number: object) -> str:
        if check == "not_nullable":
            return "nullable"
        names = self._names.get(column, [])
        # check_number comes back as a float when other rows of failure_cases hold None
        if isinstance(number, int | float) and math.isfinite(number) and 0 <= number < len(names):
            return names[int(number)]
        return str(check)  # a pandera-level failure we do not configure; keep its words
