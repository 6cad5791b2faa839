"""The spec: ``conveyor.yaml`` parsed into frozen, validated pydantic models.

>>> loaded = load_spec(Path("conveyor.yaml"))          # doctest: +SKIP
>>> loaded.spec.model.target                            # doctest: +SKIP
'delayed'

Errors are :class:`conveyor.errors.SpecError`; the message names the file and lists every
problem with its line, key path, what was expected and, for typos, the nearest valid key.
"""

from conveyor.spec._base import Duration, format_duration, parse_duration
from conveyor.spec._data import (
    ChecksSpec,
    ColumnSpec,
    ColumnType,
    DatasetSpec,
    OnFailure,
    SchemaSpec,
    SqlCheck,
)
from conveyor.spec._deploy import (
    AbRollout,
    BatchingSpec,
    BlueGreenRollout,
    CanaryRollout,
    Guardrails,
    PredictionLogSpec,
    ResponseCacheSpec,
    Rollout,
    ServeSpec,
    ShadowRollout,
)
from conveyor.spec._features import (
    FeaturesSpec,
    FeatureViewSpec,
    OnlineStore,
    RedisOnlineStore,
    SqliteOnlineStore,
)
from conveyor.spec._gate import ChampionComparison, GateSpec
from conveyor.spec._loader import SPEC_FILENAME, LoadedSpec, load_spec, parse_spec
from conveyor.spec._metrics import PRIMARY_METRIC, TASK_METRICS, Direction, Task
from conveyor.spec._model import ALGORITHMS, FeatureSelection, ModelSpec, SplitMethod, SplitSpec
from conveyor.spec._monitor import (
    DEFAULT_DRIFT_THRESHOLDS,
    AlertEvent,
    AlertSpec,
    DriftMethod,
    DriftMethods,
    DriftSpec,
    MonitorSpec,
    QualitySpec,
    RetrainSpec,
    RetrainTrigger,
)
from conveyor.spec._root import Spec
from conveyor.spec._settings import SettingsSpec
from conveyor.spec._sources import (
    CursorPagination,
    FileFormat,
    FileSource,
    HttpSource,
    NextLinkPagination,
    OffsetPagination,
    PagePagination,
    Pagination,
    Source,
    SqlSource,
)
from conveyor.spec._steps import StepSpec
from conveyor.spec._tune import CategoricalParam, FloatParam, IntParam, ParamSpace, TuneSpec

__all__ = [
    "ALGORITHMS",
    "DEFAULT_DRIFT_THRESHOLDS",
    "PRIMARY_METRIC",
    "SPEC_FILENAME",
    "TASK_METRICS",
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
    "PagePagination",
    "Pagination",
    "ParamSpace",
    "PredictionLogSpec",
    "QualitySpec",
    "RedisOnlineStore",
    "ResponseCacheSpec",
    "RetrainSpec",
    "RetrainTrigger",
    "Rollout",
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
    "Task",
    "TuneSpec",
    "format_duration",
    "load_spec",
    "parse_duration",
    "parse_spec",
]
