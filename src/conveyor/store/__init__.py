"""Conveyor's metadata store: runs, step cache, dataset versions, the audit log, deployments,
serving statistics, leases, monitoring runs, alerts and retraining triggers.

SQLite (WAL) by default, PostgreSQL when several machines share it; the schema is migrated
automatically when a store is opened::

    from conveyor.store import MetadataStore

    with MetadataStore("sqlite:////home/me/project/.conveyor/conveyor.db") as store:
        run = store.create_run(project="churn", spec_hash="ab12", actor="me",
                               hostname="laptop", pid=4242)
"""

from ._deploy_records import (
    DeploymentEvent,
    DeploymentEventInput,
    DeploymentPolicy,
    DeploymentRecord,
    DeploymentStamp,
    DeploymentState,
    ServingStatsInput,
    ServingStatsSummary,
)
from ._deployments import DEPLOYMENT_CHANNEL
from ._histograms import (
    LATENCY_BUCKETS_MS,
    SCORE_BINS,
    STATS_WINDOW_S,
    latency_bucket,
    latency_quantile,
    score_bin,
    stats_window,
)
from ._monitor_records import AlertRecord, MonitorRunRecord, RetrainTriggerRecord
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
    "DEPLOYMENT_CHANNEL",
    "LATENCY_BUCKETS_MS",
    "SCORE_BINS",
    "STATS_WINDOW_S",
    "UNSET",
    "AlertRecord",
    "AuditEntry",
    "CacheEntry",
    "DatasetVersionRecord",
    "DeploymentEvent",
    "DeploymentEventInput",
    "DeploymentPolicy",
    "DeploymentRecord",
    "DeploymentStamp",
    "DeploymentState",
    "MetadataStore",
    "MonitorRunRecord",
    "RetrainTriggerRecord",
    "RunRecord",
    "RunStatus",
    "ServingStatsInput",
    "ServingStatsSummary",
    "StepRunRecord",
    "StepStatus",
    "Unset",
    "latency_bucket",
    "latency_quantile",
    "score_bin",
    "stats_window",
]
