"""The built-in ``register`` step: a gated model becomes a registered MLflow model version."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from conveyor.errors import GateFailedError
from conveyor.train.steps._common import ModelStepConfig, open_tracking, read_json

if TYPE_CHECKING:
    from pathlib import Path

    from conveyor.pipeline import StepContext

__all__ = ["register_step", "version_tags"]


def version_tags(
    ctx: StepContext, training: dict[str, Any], evaluation: dict[str, Any]
) -> dict[str, str]:
    """The lineage and quality tags of a new model version."""
    tags = {
        "conveyor.project": str(ctx.config["project"]),
        "conveyor.pipeline_run": ctx.run_id,
        "conveyor.spec_sha256": str(ctx.config["spec_sha256"]),
        "conveyor.model_sha256": training["model_sha256"],
        "conveyor.algorithm": training["algorithm"],
        "conveyor.task": training["task"],
        "conveyor.gate": json.dumps(evaluation["gate"], sort_keys=True)[:5000],
        **training["onnx"],
    }
    if training.get("onnx_sha256"):
        tags["conveyor.onnx_sha256"] = training["onnx_sha256"]
    for key in ("dataset_version", "raw_dataset_version", "validation_report", "dataset_sha256"):
        if training.get(key):
            tags[f"conveyor.{key}"] = str(training[key])
    for name, value in evaluation["evaluation"]["metrics"].items():
        if value.get("value") is not None:
            tags[f"conveyor.metric.{name}"] = f"{value['value']:.6g}"
    return tags


def register_step(ctx: StepContext) -> dict[str, Path]:
    """Register the model if it passed the gate: champion if it is the first, else challenger.

    The same model bytes registered before are not registered again (a re-run after a
    crash, or an unchanged pipeline, keeps one version).

    Raises:
        GateFailedError: the gate failed; it names each failed check with its numbers.
    """
    from conveyor.registry import ModelRegistry

    cfg = ModelStepConfig.parse(ctx.config)
    training = read_json(ctx.inputs["training"])
    evaluation = read_json(ctx.inputs["evaluation"])
    if not evaluation["gate"]["passed"]:
        failed = [c for c in evaluation["gate"]["checks"] if not c["passed"]]
        details = "; ".join(f"{c['name']}: {c['detail']}" for c in failed)
        raise GateFailedError(
            f"the model failed its gate, so nothing was registered: {details} "
            f"(model card: {evaluation['model_card']})"
        )
    tracking = open_tracking(ctx.project_root, cfg.project)
    registry = ModelRegistry(tracking.client, cfg.project)
    existing = next(
        (
            v
            for v in registry.versions()
            if v.tags.get("conveyor.model_sha256") == training["model_sha256"]
        ),
        None,
    )
    actor = f"pipeline run {ctx.run_id[:8]}"
    if existing is not None:
        version, role = existing, "already registered"
    else:
        version = registry.register(
            model_uri=training["model_uri"],
            run_id=training["mlflow_run_id"],
            tags=version_tags(ctx, training, evaluation),
            description=f"{training['algorithm']} trained by pipeline run {ctx.run_id}",
        )
        if registry.alias("champion") is None:
            version = registry.promote(
                version.version,
                reason="first model of the project passed its gate",
                actor=actor,
                store=ctx.store,
            )
            role = "champion"
        else:
            champion = evaluation.get("champion") or {}
            version = registry.set_challenger(
                version.version,
                reason=f"passed the gate against champion version {champion.get('version')}",
                actor=actor,
                store=ctx.store,
            )
            role = "challenger"
    out = ctx.output_path("version")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"name": cfg.project, "version": version.version, "role": role}
    out.write_text(json.dumps(payload | {"aliases": list(version.aliases)}, indent=2), "utf-8")
    ctx.progress(1, 1, f"model {cfg.project} version {version.version}: {role}")
    return {"version": out}
