"""Profiles of tables and the differences between two of them, computed by DuckDB out of core.

* :func:`profile_relation` / :func:`profile_parquet`: per-column statistics
  (:class:`TableProfile`, :class:`ColumnProfile`) in two scans, without loading rows.
* :func:`propose_schema`: a ``schema:`` block for ``conveyor.yaml`` inferred from a profile.
* :func:`diff_relations` / :func:`diff_parquet`: what changed between two tables
  (:class:`DatasetDiff`, :class:`ColumnChange`), with a drift number per column.
"""

from conveyor.data.profiling._diff import (
    ColumnChange,
    DatasetDiff,
    diff_parquet,
    diff_relations,
)
from conveyor.data.profiling._profile import (
    ColumnProfile,
    TableProfile,
    profile_parquet,
    profile_relation,
)
from conveyor.data.profiling._propose import propose_schema

__all__ = [
    "ColumnChange",
    "ColumnProfile",
    "DatasetDiff",
    "TableProfile",
    "diff_parquet",
    "diff_relations",
    "profile_parquet",
    "profile_relation",
    "propose_schema",
]
