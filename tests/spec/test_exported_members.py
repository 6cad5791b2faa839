"""The public API of ``conveyor.spec`` is exactly what ``__all__`` says."""

from __future__ import annotations

import inspect

import conveyor.spec

EXPORTED = {
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
}


def test_exported_members() -> None:
    public = {name for name in dir(conveyor.spec) if not name.startswith("_")}
    assert set(conveyor.spec.__all__) == public
    assert len(conveyor.spec.__all__) == len(set(conveyor.spec.__all__))
    for name in conveyor.spec.__all__:
        assert getattr(conveyor.spec, name) is not None


def test_the_exported_set_is_pinned() -> None:
    # Changing the public API is a decision: update this set on purpose.
    assert set(conveyor.spec.__all__) == EXPORTED
    assert conveyor.spec.SPEC_FILENAME == "conveyor.yaml"


def test_exported_classes_and_functions_are_documented() -> None:
    undocumented = [
        name
        for name in conveyor.spec.__all__
        if inspect.isclass(obj := getattr(conveyor.spec, name)) or inspect.isfunction(obj)
        if not (obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__)
    ]
    assert undocumented == []
