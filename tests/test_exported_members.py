"""The public names of each package are pinned: adding, removing or renaming one is a decision.

Modelled on httpx's tests/test_exported_members.py.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

EXPECTED = {
    "conveyor.artifacts": {
        "ArtifactRef",
        "ArtifactStore",
        "CHUNK_SIZE",
        "VerifyingReader",
    },
    "conveyor.data": {
        "RAW",
        "Snapshot",
        "VALIDATED",
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
    },
    "conveyor.data.profiling": {
        "ColumnChange",
        "ColumnProfile",
        "DatasetDiff",
        "TableProfile",
        "diff_parquet",
        "diff_relations",
        "profile_parquet",
        "profile_relation",
        "propose_schema",
    },
    "conveyor.data.sources": {
        "BaseSource",
        "FileTableSource",
        "HttpJsonSource",
        "SqlTableSource",
        "build_source",
        "wrap_duckdb_errors",
    },
    "conveyor.data.validation": {
        "CheckResult",
        "REASONS_COLUMN",
        "ValidationResult",
        "render_report_html",
        "validate_snapshot",
    },
    "conveyor.errors": {
        "ArtifactCorruptedError",
        "ArtifactError",
        "ArtifactNotFoundError",
        "BackendUnavailableError",
        "ConflictError",
        "ConveyorError",
        "DataValidationError",
        "MigrationError",
        "NothingToResumeError",
        "PipelineError",
        "ProjectError",
        "RecordNotFoundError",
        "RunInterruptedError",
        "SettingsError",
        "SourceError",
        "SpecError",
        "StepFailedError",
        "StoreError",
        "TrainingError",
    },
    "conveyor.pipeline": {
        "Pipeline",
        "RunReporter",
        "RunResult",
        "Runner",
        "Step",
        "StepContext",
        "StepFunction",
        "is_alive",
        "load_callable",
        "pipeline_from_spec",
        "reap_stale_runs",
    },
    "conveyor.spec": {
        "ALGORITHMS",
        "AbRollout",
        "AlertEvent",
        "AlertSpec",
        "BatchingSpec",
        "BlueGreenRollout",
        "CanaryRollout",
        "CategoricalParam",
        "ChampionComparison",
        "ChecksSpec",
        "ColumnSpec",
        "ColumnType",
        "CursorPagination",
        "DEFAULT_DRIFT_THRESHOLDS",
        "DatasetSpec",
        "Direction",
        "DriftMethod",
        "DriftMethods",
        "DriftSpec",
        "Duration",
        "FeatureSelection",
        "FeatureViewSpec",
        "FeaturesSpec",
        "FileFormat",
        "FileSource",
        "FloatParam",
        "GateSpec",
        "Guardrails",
        "HttpSource",
        "IntParam",
        "LoadedSpec",
        "ModelSpec",
        "MonitorSpec",
        "NextLinkPagination",
        "OffsetPagination",
        "OnFailure",
        "OnlineStore",
        "PRIMARY_METRIC",
        "PagePagination",
        "Pagination",
        "ParamSpace",
        "PredictionLogSpec",
        "QualitySpec",
        "RedisOnlineStore",
        "RetrainSpec",
        "RetrainTrigger",
        "Rollout",
        "SPEC_FILENAME",
        "SchemaSpec",
        "ServeSpec",
        "SettingsSpec",
        "ShadowRollout",
        "Source",
        "Spec",
        "SplitMethod",
        "SplitSpec",
        "SqlCheck",
        "SqlSource",
        "SqliteOnlineStore",
        "StepSpec",
        "TASK_METRICS",
        "Task",
        "TuneSpec",
        "format_duration",
        "load_spec",
        "parse_duration",
        "parse_spec",
    },
    "conveyor.store": {
        "AuditEntry",
        "CacheEntry",
        "DatasetVersionRecord",
        "MetadataStore",
        "RunRecord",
        "RunStatus",
        "StepRunRecord",
        "StepStatus",
        "UNSET",
        "Unset",
    },
    "conveyor.train.algorithms": {
        "BaseAlgorithm",
        "LightGBMAlgorithm",
        "OnIteration",
        "SklearnAlgorithm",
        "build_algorithm",
    },
    "conveyor.train.evaluation": {
        "ECE_BINS",
        "EXTRA_METRICS",
        "Evaluation",
        "GateCheck",
        "GateResult",
        "MetricValue",
        "NO_CHAMPION",
        "check_gates",
        "compare_paired",
        "evaluate",
        "known_metrics",
    },
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_exported_members_are_pinned(module: str) -> None:
    imported = importlib.import_module(module)
    assert set(imported.__all__) == EXPECTED[module]
    assert len(imported.__all__) == len(set(imported.__all__))
    public = {
        name
        for name, value in vars(imported).items()
        if not name.startswith("_") and not inspect.ismodule(value)  # subpackages are modules
    }
    public -= {"annotations"}  # `from __future__ import annotations`
    assert public - set(imported.__all__) == set(), "public but not exported"


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_exported_classes_and_functions_are_documented(module: str) -> None:
    imported = importlib.import_module(module)
    undocumented = [
        name
        for name in imported.__all__
        if inspect.isclass(obj := getattr(imported, name)) or inspect.isfunction(obj)
        if not (obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__)
    ]
    assert undocumented == []
