"""Conveyor's metadata store: runs, step cache, dataset versions and the audit log.

SQLite (WAL) by default, PostgreSQL when several machines share it; the schema is migrated
automatically when a store is opened::

    from conveyor.store import MetadataStore

    with MetadataStore("sqlite:////home/me/project/.conveyor/conveyor.db") as store:
        run = store.create_run(project="churn", spec_hash="ab12", actor="me",
                               hostname="laptop", pid=4242)
"""

from ._records import (
    UNSET,
    AuditEntry,
    CacheEntry,
    DatasetVersionRecord,
    RunRecord,
    RunStatus,
    StepRunRecord,
    StepStatus,
    Unset,
)
from ._store import MetadataStore

__all__ = [
    "UNSET",
    "AuditEntry",
    "CacheEntry",
    "DatasetVersionRecord",
    "MetadataStore",
    "RunRecord",
    "RunStatus",
    "StepRunRecord",
    "StepStatus",
    "Unset",
]
