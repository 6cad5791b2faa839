"""``dataset:`` and ``schema:`` — the training table and the checks every snapshot must pass."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal, Self

from pydantic import Field, model_validator

from conveyor.spec._base import (
    Duration,
    RelPath,
    Scalar,
    SpecModel,
    describe_value,
    raise_problems,
)

__all__ = [
    "ChecksSpec",
    "ColumnSpec",
    "ColumnType",
    "DatasetSpec",
    "OnFailure",
    "SchemaSpec",
    "SqlCheck",
]


SchemaChange = Literal["fail", "allow"]


class DatasetSpec(SpecModel):
    """The table a model is trained on, built from the sources with DuckDB SQL.

    Each source is visible in the query as a table named after its key under ``sources:``.
    """

    query: str | None = Field(
        None,
        min_length=1,
        description="DuckDB SQL over the sources (each source is a table of the same name). "
        "May be left out when there is exactly one source.",
    )
    time_column: str | None = Field(
        None,
        description="Event-time column, used for time splits, point-in-time feature joins "
        "and monitoring windows.",
    )
    on_schema_change: SchemaChange = Field(
        "fail",
        description="What happens when the sources' columns differ from the last snapshot's: "
        "'fail' stops ingestion and says what changed; 'allow' records the new shape.",
    )


class ColumnType(StrEnum):
    """Logical type of a column."""

    str = "str"
    int = "int"
    float = "float"
    bool = "bool"
    date = "date"
    datetime = "datetime"


_NUMERIC = frozenset({ColumnType.int, ColumnType.float})


class ColumnSpec(SpecModel):
    """Expectations for one column; a row breaking one is quarantined (or fails the run)."""

    type: ColumnType = Field(description="Logical type: str, int, float, bool, date or datetime.")
    nullable: bool = Field(False, description="Whether missing values are allowed.")
    min: float | None = Field(None, description="Smallest allowed value (numeric columns).")
    max: float | None = Field(None, description="Largest allowed value (numeric columns).")
    allowed: list[Scalar] | None = Field(
        None, min_length=1, description="The only values allowed (e.g. category codes)."
    )
    pattern: str | None = Field(
        None, description="Regular expression every value must match (str columns)."
    )
    unique: bool = Field(False, description="Whether values must be unique.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[RelPath, str]] = []
        for bound in ("min", "max"):
            if getattr(self, bound) is not None and self.type not in _NUMERIC:
                problems.append(
                    ((bound,), f"'{bound}' applies to int and float columns, not {self.type}")
                )
        if self.min is not None and self.max is not None and self.min > self.max:
            problems.append((("min",), f"min ({self.min:g}) is greater than max ({self.max:g})"))
        if self.pattern is not None:
            if self.type is not ColumnType.str:
                problems.append(
                    (("pattern",), f"'pattern' applies to str columns, not {self.type}")
                )
            else:
                try:
                    re.compile(self.pattern)
                except re.error as err:
                    problems.append((("pattern",), f"invalid regular expression: {err}"))
        if self.allowed is not None and self.type is ColumnType.str:
            for index, value in enumerate(self.allowed):
                if not isinstance(value, str):
                    problems.append(
                        (
                            ("allowed", index),
                            f"expected a string in a str column, found {describe_value(value)}"
                            f" (YAML read it as a {type(value).__name__}); put it in quotes",
                        )
                    )
        raise_problems(problems)
        return self


class SqlCheck(SpecModel):
    """A custom table check: a DuckDB query over the table ``dataset`` that returns failing rows.

    The check passes when the query returns no rows, e.g.
    ``select * from dataset where arr_time < dep_time and not overnight``.
    """

    name: str = Field(
        min_length=1,
        description="Short name of the check, shown in reports as 'sql.<name>' "
        "(e.g. no_negative_distance).",
    )
    query: str = Field(
        min_length=1,
        description="DuckDB SQL over the table 'dataset' returning the rows that break the rule; "
        "the check passes when it returns no rows.",
    )
    description: str = Field("", description="What the rule means, shown in reports.")


class ChecksSpec(SpecModel):
    """Whole-table checks on each dataset snapshot."""

    min_rows: int | None = Field(None, ge=0, description="Fewest rows a snapshot may have.")
    max_rows: int | None = Field(None, ge=0, description="Most rows a snapshot may have.")
    max_null_fraction: float | None = Field(
        None, ge=0, le=1, description="Largest share of missing values allowed in any column."
    )
    unique_key: list[str] = Field(
        default_factory=list,
        description="Columns whose combined values must be unique (no duplicate rows).",
    )
    freshness: Duration | None = Field(
        None,
        description="Largest age of the newest value in dataset.time_column when the snapshot "
        "is taken (e.g. '6h', '1d'); needs dataset.time_column.",
    )
    sql: list[SqlCheck] = Field(
        default_factory=list,
        description="Custom checks: DuckDB queries over the table 'dataset' that return "
        "failing rows.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        problems: list[tuple[RelPath, str]] = []
        if self.min_rows is not None and self.max_rows is not None:
            if self.min_rows > self.max_rows:
                problems.append(
                    (
                        ("min_rows",),
                        f"min_rows ({self.min_rows}) exceeds max_rows ({self.max_rows})",
                    )
                )
        seen: set[str] = set()
        for index, check in enumerate(self.sql):
            if check.name in seen:
                problems.append(
                    (("sql", index, "name"), f"another sql check is already named {check.name!r}")
                )
            seen.add(check.name)
        raise_problems(problems)
        return self


class OnFailure(StrEnum):
    """What happens to rows that break the schema."""

    quarantine = "quarantine"
    fail = "fail"


class SchemaSpec(SpecModel):
    """Column expectations and table checks, enforced when a dataset snapshot is taken."""

    columns: dict[str, ColumnSpec] = Field(
        default_factory=dict, description="Expected columns by name."
    )
    strict: bool = Field(
        False, description="Whether columns not listed under 'columns' are an error."
    )
    checks: ChecksSpec = Field(
        default_factory=ChecksSpec, description="Whole-table checks (row counts, nulls, keys)."
    )
    on_failure: OnFailure = Field(
        OnFailure.quarantine,
        description="'quarantine' sets bad rows aside with a reason per row; 'fail' stops the run.",
    )
    max_quarantine_fraction: float = Field(
        0.05,
        ge=0,
        le=1,
        description="With on_failure 'quarantine', the run fails if a larger share of rows "
        "is quarantined.",
    )
