"""What the model steps share: their config, runtime settings, MLflow and the split data."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.spec._gate import GateSpec
from conveyor.spec._model import ModelSpec

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from conveyor.store import MetadataStore
    from conveyor.train._dataset import TrainingFrame
    from conveyor.train._split import Split
    from conveyor.workspace import Settings

__all__ = [
    "ModelStepConfig",
    "Tracking",
    "dataset_versions",
    "load_parts",
    "open_tracking",
    "read_json",
    "runtime_settings",
]


@dataclass(frozen=True)
class ModelStepConfig:
    """The slice of the spec the model steps depend on (their cache key)."""

    project: str
    model: ModelSpec
    gate: GateSpec | None
    time_column: str | None

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> ModelStepConfig:
        gate = config.get("gate")
        return cls(
            project=config["project"],
            model=ModelSpec.model_validate(config["model"]),
            gate=None if gate is None else GateSpec.model_validate(gate),
            time_column=config.get("time_column"),
        )


def runtime_settings(project_root: Path) -> Settings:
    """Settings as the run's process sees them (environment > spec ``settings:`` > defaults).

    They are read when the step runs, not stored in its config, so URLs with passwords never
    reach the metadata store and moving MLflow elsewhere does not invalidate cached steps.
    """
    from conveyor.spec import load_spec
    from conveyor.workspace import SPEC_FILENAME, Project

    project = Project.at(project_root)
    spec_file = project_root / SPEC_FILENAME
    spec_settings = load_spec(spec_file).spec.settings if spec_file.exists() else None
    return project.settings(spec_settings)


@dataclass(frozen=True)
class Tracking:
    """An MLflow client and the project's experiment."""

    client: MlflowClient
    tracking_uri: str
    experiment_id: str


def open_tracking(project_root: Path, project: str) -> Tracking:
    """Connect to the project's MLflow and make sure its experiment exists.

    Raises:
        TrackingError: MLflow cannot be reached.
    """
    from conveyor.registry import connect, ensure_experiment
    from conveyor.workspace import Project

    uri = runtime_settings(project_root).mlflow_tracking_uri
    client = connect(uri)
    local = uri.startswith("sqlite:") or "://" not in uri
    location = (Project.at(project_root).state_dir / "mlartifacts").as_uri() if local else None
    return Tracking(client, uri, ensure_experiment(client, project, artifact_location=location))


def read_json(path: Path) -> Any:
    """The JSON value in ``path``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def dataset_versions(store: MetadataStore, raw_version: Path, dataset: Path) -> dict[str, str]:
    """Ids of the raw and validated dataset versions behind a validated Parquet file."""
    from conveyor.digests import digest_file

    raw = read_json(raw_version)
    found = {"raw_dataset_version": raw["id"], "raw_dataset_name": raw["name"]}
    sha = digest_file(dataset)
    for version in store.list_dataset_versions(limit=1000):
        if version.sha256 == sha and raw["id"] in version.parents:
            found |= {"dataset_version": version.id, "dataset_name": version.name}
            report = version.artifacts.get("report_html")
            if report:
                found["validation_report"] = report
            break
    found["dataset_sha256"] = sha
    return found


def load_parts(dataset: Path, cfg: ModelStepConfig) -> tuple[TrainingFrame, Split]:
    """The training frame of ``dataset`` and its split, as the model spec says."""
    from conveyor.train._dataset import load_training_frame
    from conveyor.train._split import split

    frame = load_training_frame(dataset, cfg.model, time_column=cfg.time_column)
    return frame, split(frame, cfg.model.split, task=cfg.model.task)
