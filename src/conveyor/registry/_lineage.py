"""Where a model version came from: sources → datasets → pipeline run → MLflow run → version."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from conveyor.errors import RecordNotFoundError, RegistryError
from conveyor.registry._client import is_remote, mlflow_errors

if TYPE_CHECKING:
    from conveyor.registry._registry import ModelRegistry, ModelVersionInfo
    from conveyor.store import DatasetVersionRecord, MetadataStore

__all__ = ["UNKNOWN", "lineage"]

UNKNOWN: Final = "unknown"
"""Stands for a link of the chain that cannot be traced (e.g. a version registered by hand)."""


def lineage(registry: ModelRegistry, ref: str | int, *, store: MetadataStore) -> dict[str, Any]:
    """The chain that produced model version ``ref``, JSON-ready, oldest link first.

    Keys, in order: ``sources``, ``raw_dataset``, ``validated_dataset``, ``pipeline_run``,
    ``mlflow_run``, ``model_version``, ``deployments``. A link that cannot be traced is the
    string ``"unknown"``; one whose id is known but whose record is gone is
    ``{"id": ..., "found": False}``. ``deployments`` lists the project's deployments that
    involved the version (as champion, challenger or shadow), newest first.

    Raises:
        ModelVersionNotFoundError: no such version.
        TrackingError: MLflow is unreachable.
    """
    version = registry.get(ref)
    tags = version.tags
    validated_id = tags.get("conveyor.dataset_version")
    validated = _dataset(store, validated_id)
    raw_id = tags.get("conveyor.raw_dataset_version") or _parent(validated)
    raw = _dataset(store, raw_id)
    return {
        "sources": _sources(raw),
        "raw_dataset": _dataset_link(raw_id, raw),
        "validated_dataset": _validated_link(validated_id, validated, tags),
        "pipeline_run": _pipeline_run(store, tags.get("conveyor.pipeline_run")),
        "mlflow_run": _mlflow_run(registry, version.run_id),
        "model_version": _model_version(version),
        "deployments": _deployments(store, registry.name, version.version),
    }


def _deployments(store: MetadataStore, project: str, number: int) -> list[dict[str, Any]]:
    records = store.list_deployments(project, limit=1000)
    return [
        {
            "id": record.id,
            "policy": str(record.policy),
            "state": str(record.state),
            "role": (
                "champion"
                if record.champion_version == number
                else "challenger"
                if record.challenger_version == number
                else "shadow"
            ),
            "weights": {str(v): w for v, w in record.weights.items()},
            "created_at": record.created_at.isoformat(),
            "reason": record.reason,
        }
        for record in records
        if number in (record.champion_version, record.challenger_version, record.shadow_version)
    ]


def _dataset(store: MetadataStore, ident: str | None) -> DatasetVersionRecord | None:
    if not ident:
        return None
    try:
        return store.get_dataset_version(ident)
    except RecordNotFoundError:
        return None


def _parent(validated: DatasetVersionRecord | None) -> str | None:
    if validated is None:
        return None
    if validated.parents:
        return validated.parents[0]
    raw = validated.source.get("validated_from")
    return str(raw) if raw else None


def _sources(raw: DatasetVersionRecord | None) -> list[dict[str, Any]] | str:
    sources = (raw.source.get("sources") if raw is not None else None) or None
    if not isinstance(sources, dict):
        return UNKNOWN
    return [{"name": str(name), **_as_dict(config)} for name, config in sources.items()]


def _dataset_link(ident: str | None, record: DatasetVersionRecord | None) -> Any:
    if not ident:
        return UNKNOWN
    if record is None:
        return {"id": ident, "found": False}
    return {
        "id": record.id,
        "name": record.name,
        "rows": record.row_count,
        "sha256": record.sha256,
        "created_at": _iso(record.created_at),
    }


def _validated_link(
    ident: str | None, record: DatasetVersionRecord | None, tags: dict[str, str]
) -> Any:
    link = _dataset_link(ident, record)
    if record is not None:
        link["quarantined_rows"] = record.stats.get("quarantined_rows")
    report = tags.get("conveyor.validation_report") or (
        record.artifacts.get("report_html") if record is not None else None
    )
    if isinstance(link, dict) and (report or record is not None):
        link["validation_report"] = report or UNKNOWN
    return link


def _pipeline_run(store: MetadataStore, run_id: str | None) -> Any:
    if not run_id:
        return UNKNOWN
    try:
        run = store.get_run(run_id)
    except RecordNotFoundError:
        return {"id": run_id, "found": False}
    return {
        "id": run.id,
        "status": run.status.value,
        "actor": run.actor,
        "created_at": _iso(run.created_at),
        "finished_at": _iso(run.finished_at),
        "spec_sha256": run.spec_hash,
    }


def _mlflow_run(registry: ModelRegistry, run_id: str | None) -> Any:
    if not run_id:
        return UNKNOWN
    from mlflow.exceptions import MlflowException

    client = registry.client
    try:
        with mlflow_errors(f"cannot read MLflow run {run_id}"):
            try:
                run = client.get_run(run_id)
            except MlflowException as err:
                if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return {"id": run_id, "found": False}
                raise
            experiment = client.get_experiment(run.info.experiment_id)
    except RegistryError:
        return {"id": run_id, "found": False}
    uri = str(client.tracking_uri)
    link = (
        f"{uri.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/{run_id}"
        if is_remote(uri)
        else None
    )
    return {
        "id": run_id,
        "experiment_id": str(run.info.experiment_id),
        "experiment": experiment.name if experiment is not None else UNKNOWN,
        "run_name": run.info.run_name or UNKNOWN,
        "status": run.info.status,
        "metrics": dict(run.data.metrics),
        "link": link,
    }


def _model_version(version: ModelVersionInfo) -> dict[str, Any]:
    return {
        "name": version.name,
        "version": version.version,
        "aliases": list(version.aliases),
        "created_at": _iso(version.created_at),
        "source": version.source,
        "algorithm": version.tags.get("conveyor.algorithm", UNKNOWN),
        "metrics": version.metrics,
        "onnx_verified": version.tags.get("conveyor.onnx_verified", UNKNOWN),
        "model_sha256": version.tags.get("conveyor.model_sha256", UNKNOWN),
    }


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {"config": value}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
