"""Every error Conveyor raises on purpose.

Each message says what failed, with which value, and what to do next. The CLI prints the
message on one line and exits 1 (``--debug`` shows the traceback); the server maps classes to
HTTP statuses in one place. Nothing here imports a transport or UI library.

ConveyorError
├── ProjectError              no project found, unwritable ``.conveyor/``
├── SpecError                 the spec file is malformed or invalid (names file, key path, line)
├── SettingsError             a setting or environment override is invalid
├── StoreError                the metadata store failed
│   ├── BackendUnavailableError   a database/server/driver cannot be reached or is missing
│   ├── MigrationError            the schema cannot be brought to the version this code needs
│   ├── ConflictError             a concurrent writer changed the record first
│   └── RecordNotFoundError       no run / dataset version / ... with that id
├── SourceError               a data source cannot be read (names source, file/URL/row, fix)
├── DataValidationError       a snapshot breaks the schema beyond what quarantine allows
├── ArtifactError             the artifact store failed
│   ├── ArtifactNotFoundError     no artifact with that digest
│   └── ArtifactCorruptedError    stored bytes do not match their sha256
├── TrainingError             the data or settings cannot train a model (target, split, algorithm)
├── GateFailedError           a trained model failed its gate; nothing was registered
├── TrackingError             the MLflow tracking server is unreachable or refused a request
├── RegistryError             the model registry cannot do it (no champion, ...)
│   ├── ModelVersionNotFoundError no model version with that number or alias
│   └── ModelChecksumError        a model file's sha256 differs from its registry tag
└── PipelineError             the pipeline definition is invalid (cycle, unknown input, ...)
    ├── StepFailedError           a step raised; the run can be resumed
    ├── RunInterruptedError       the run was interrupted (Ctrl-C, SIGTERM)
    └── NothingToResumeError      ``--resume`` found no failed or interrupted run
"""

from __future__ import annotations

__all__ = [
    "ArtifactCorruptedError",
    "ArtifactError",
    "ArtifactNotFoundError",
    "BackendUnavailableError",
    "ConflictError",
    "ConveyorError",
    "DataValidationError",
    "GateFailedError",
    "MigrationError",
    "ModelChecksumError",
    "ModelVersionNotFoundError",
    "NothingToResumeError",
    "PipelineError",
    "ProjectError",
    "RecordNotFoundError",
    "RegistryError",
    "RunInterruptedError",
    "SettingsError",
    "SourceError",
    "SpecError",
    "StepFailedError",
    "StoreError",
    "TrackingError",
    "TrainingError",
]


class ConveyorError(Exception):
    """Root of every error Conveyor raises on purpose."""


class ProjectError(ConveyorError):
    """No project was found, or its local state folder cannot be used."""


class SpecError(ConveyorError):
    """The spec file is malformed or does not validate."""


class SettingsError(ConveyorError):
    """A setting (from the spec or the environment) is invalid."""


class SourceError(ConveyorError):
    """A data source cannot be read: missing file, bad row, SQL error, HTTP failure, ..."""


class DataValidationError(ConveyorError):
    """A dataset snapshot breaks its schema and the policy says to stop."""


class StoreError(ConveyorError):
    """The metadata store failed."""


class BackendUnavailableError(StoreError):
    """A backend (database, server, optional driver) cannot be reached or is not installed."""


class MigrationError(StoreError):
    """The store's schema cannot be brought to the version this code needs."""


class ConflictError(StoreError):
    """A concurrent writer changed the record between our read and our write."""


class RecordNotFoundError(StoreError):
    """No record with the requested id exists."""


class ArtifactError(ConveyorError):
    """The artifact store failed."""


class ArtifactNotFoundError(ArtifactError):
    """No artifact with the requested digest exists."""


class ArtifactCorruptedError(ArtifactError):
    """The stored bytes of an artifact do not match their sha256 digest."""


class TrainingError(ConveyorError):
    """The data or the model settings cannot train a model: missing target, bad split, ..."""


class GateFailedError(ConveyorError):
    """A trained model failed its quality gate; nothing was registered."""


class TrackingError(ConveyorError):
    """The MLflow tracking server cannot be reached or refused a request."""


class RegistryError(ConveyorError):
    """The model registry cannot do what was asked: unknown version, no champion, ..."""


class ModelVersionNotFoundError(RegistryError):
    """No registered model version with the requested number or alias exists."""


class ModelChecksumError(RegistryError):
    """A model file's sha256 does not match the one its registry entry records."""


class PipelineError(ConveyorError):
    """The pipeline definition is invalid."""


class StepFailedError(PipelineError):
    """A step raised an exception; the run is marked failed and can be resumed."""


class RunInterruptedError(PipelineError):
    """The run was interrupted (Ctrl-C or SIGTERM); it is marked interrupted and can be resumed."""


class NothingToResumeError(PipelineError):
    """``--resume`` was asked for but no failed or interrupted run exists."""
