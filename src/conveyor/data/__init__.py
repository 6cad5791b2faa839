"""Data: sources, dataset snapshots, validation with quarantine, and profiling.

The heavy engines (DuckDB, pyarrow, pandas, pandera) are imported by the functions that use
them, so importing this package stays cheap.
"""

from conveyor.data._inspect import profile_sources
from conveyor.data._snapshot import (
    RAW,
    VALIDATED,
    Snapshot,
    dataset_name,
    dataset_query,
    open_sources,
    take_snapshot,
    version_id,
)
from conveyor.data._steps import builtin_steps, ingest_step, validate_step
from conveyor.data._validated import Validated, validate_version, validation_failure

__all__ = [
    "RAW",
    "VALIDATED",
    "Snapshot",
    "Validated",
    "builtin_steps",
    "dataset_name",
    "dataset_query",
    "ingest_step",
    "open_sources",
    "profile_sources",
    "take_snapshot",
    "validate_step",
    "validate_version",
    "validation_failure",
    "version_id",
]
