"""The built-in ``train`` step: fit the model, log everything to MLflow, export ONNX."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from conveyor.train._environment import git_commit, pip_freeze, system_info
from conveyor.train.steps._common import (
    ModelStepConfig,
    Tracking,
    dataset_versions,
    load_parts,
    open_tracking,
    read_json,
)

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from conveyor.pipeline import StepContext
    from conveyor.train._dataset import TrainingFrame
    from conveyor.train._split import Split
    from conveyor.train.algorithms import BaseAlgorithm

__all__ = ["train_step"]

logger = logging.getLogger("conveyor.train")
_MLFLOW_RUN_TAG = "mlflow_run:train"


def train_step(ctx: StepContext) -> dict[str, Path]:
    """Train on the training part; outputs the model archive and a JSON summary.

    The MLflow run gets the parameters, per-iteration validation metrics, the dataset
    version as a dataset input, the spec slice, the git commit, ``pip freeze``, the machine,
    the model (with signature and input example) and its ONNX export when verified.
    """
    from conveyor.train.algorithms import build_algorithm
    from conveyor.train.tuning._space import check_params

    cfg = ModelStepConfig.parse(ctx.config)
    check_params(cfg.model)  # before any data is read: LightGBM ignores unknown names
    dataset = ctx.inputs["dataset"]
    tuned: dict[str, Any] = {}
    if "best_params" in ctx.inputs:
        tuned = dict(read_json(ctx.inputs["best_params"])["best_params"])
    params = {**cfg.model.params, **tuned}
    spec = cfg.model.model_copy(update={"params": params})
    frame, parts = load_parts(dataset, cfg)
    ctx.progress(0, None, f"{len(parts.train):,} training rows, {len(parts.test):,} held out")
    versions = dataset_versions(ctx.store, ctx.inputs["version"], dataset)
    tracking = open_tracking(ctx.project_root, cfg.project)
    run_id = _start_mlflow_run(ctx, tracking, cfg, versions)
    model = build_algorithm(spec, frame.feature_schema)
    if hasattr(model, "checkpoints"):  # torch: resume from the last checkpoint after a crash
        from conveyor.train._checkpoints import StoreCheckpoints

        model.checkpoints = StoreCheckpoints(
            store=ctx.store, artifacts=ctx.artifacts, run_id=ctx.run_id, step=ctx.name
        )
    history: list[tuple[int, dict[str, float]]] = []

    def on_iteration(iteration: int, metrics: dict[str, float]) -> None:
        history.append((iteration, metrics))
        if iteration % 10 == 0:
            ctx.progress(iteration + 1, None, f"iteration {iteration + 1}")

    status = "FAILED"
    try:
        X = frame.X
        model.fit(
            X.iloc[parts.train],
            frame.y[parts.train],
            X_valid=X.iloc[parts.validation],
            y_valid=frame.y[parts.validation],
            on_iteration=on_iteration,
        )
        result = _log_and_store(ctx, tracking, run_id, cfg, model, frame, parts, history)
        result |= {"params": params, "tuned": tuned, **versions}
        status = "FINISHED"
    finally:
        tracking.client.set_terminated(run_id, status=status)
    out = ctx.output_path("training")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True, default=str), encoding="utf-8")
    archive = ctx.artifacts.get_file(result["model_sha256"], ctx.output_path("model"))
    return {"model": archive, "training": out}


def _start_mlflow_run(
    ctx: StepContext, tracking: Tracking, cfg: ModelStepConfig, versions: dict[str, str]
) -> str:
    """A new MLflow run for this attempt; a run left by a crashed attempt is marked killed."""
    client = tracking.client
    previous = ctx.store.get_run(ctx.run_id).tags.get(_MLFLOW_RUN_TAG)
    if previous:
        try:
            if client.get_run(previous).info.status == "RUNNING":
                client.set_terminated(previous, status="KILLED")
        except Exception:  # the old run may be gone; it is only tidied up
            logger.debug("cannot mark MLflow run %s killed", previous, exc_info=True)
    commit = git_commit(ctx.project_root)
    tags = {
        "conveyor.pipeline_run": ctx.run_id,
        "conveyor.step": ctx.name,
        "conveyor.attempt": str(ctx.attempt),
        "conveyor.algorithm": cfg.model.algorithm,
        "conveyor.task": str(cfg.model.task),
        **{f"conveyor.{key}": value for key, value in versions.items()},
    }
    if commit:
        tags["mlflow.source.git.commit"] = commit
    run = client.create_run(tracking.experiment_id, run_name=f"train-{ctx.run_id[:8]}", tags=tags)
    ctx.store.merge_run_tags(ctx.run_id, {_MLFLOW_RUN_TAG: run.info.run_id})
    return str(run.info.run_id)


def _log_and_store(
    ctx: StepContext,
    tracking: Tracking,
    run_id: str,
    cfg: ModelStepConfig,
    model: BaseAlgorithm,
    frame: TrainingFrame,
    parts: Split,
    history: list[tuple[int, dict[str, float]]],
) -> dict[str, Any]:
    import mlflow
    from mlflow.entities import Metric, Param

    from conveyor.registry import log_conveyor_model
    from conveyor.train._archive import pack_model
    from conveyor.train.onnx import export_onnx

    client = tracking.client
    effective = {**(model.params or {}), "seed": model.seed, "algorithm": cfg.model.algorithm}
    split = cfg.model.split
    logged = {
        **{f"param.{key}": value for key, value in effective.items()},
        "split.method": split.method or ("time" if frame.time is not None else "random"),
        "split.test_fraction": split.test_fraction,
        "split.validation_fraction": split.validation_fraction,
        "features": len(frame.feature_schema),
        "rows.train": len(parts.train),
        "rows.validation": len(parts.validation),
        "rows.test": len(parts.test),
    }
    params = [Param(key[:250], str(value)[:6000]) for key, value in logged.items()]
    metrics = [
        Metric(name, float(value), 0, iteration)
        for iteration, values in history
        for name, value in values.items()
    ]
    for start in range(0, max(len(metrics), 1), 1000):
        client.log_batch(
            run_id,
            metrics=metrics[start : start + 1000],
            params=params if start == 0 else [],
        )
    folder = ctx.workdir / "model"
    model.save(folder)
    model_sha = ctx.artifacts.put_bytes(pack_model(folder)).digest
    X_test = frame.X.iloc[parts.test]
    ctx.progress(0, None, "exporting to ONNX and checking it on the holdout")
    onnx = export_onnx(model, X_test)
    onnx_sha = ctx.artifacts.put_bytes(onnx.data).digest if onnx.data and onnx.verified else None
    mlflow.set_tracking_uri(tracking.tracking_uri)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_input(_dataset_input(cfg, frame, ctx), context="training")
        mlflow.log_dict(
            {"model": cfg.model.model_dump(mode="json"), "gate": _dump(cfg.gate)},
            "conveyor/spec.json",
        )
        mlflow.log_text(pip_freeze(), "environment/requirements.txt")
        mlflow.log_dict(system_info(), "environment/system.json")
        mlflow.set_tags({f"system.{key}": value for key, value in system_info().items()})
        info = log_conveyor_model(
            folder,
            X_example=X_test.head(1000),
            onnx=onnx.data if onnx.verified else None,
        )
        mlflow.set_tags(onnx.tags() | {"conveyor.model_sha256": model_sha})
    return {
        "mlflow_run_id": run_id,
        "experiment_id": tracking.experiment_id,
        "model_uri": info.model_uri,
        "model_sha256": model_sha,
        "onnx_sha256": onnx_sha,
        "onnx": onnx.tags(),
        "algorithm": cfg.model.algorithm,
        "task": str(cfg.model.task),
        "features": dict(frame.feature_schema),
        "rows": {"train": len(parts.train), "validation": len(parts.validation)}
        | {"test": len(parts.test)},
        "iterations": len(history),
    }


def _dump(value: Any) -> Any:
    return None if value is None else value.model_dump(mode="json")


def _dataset_input(cfg: ModelStepConfig, frame: TrainingFrame, ctx: StepContext) -> Any:
    """The validated dataset version as an MLflow dataset (metadata only: no data copied)."""
    import warnings

    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.models import infer_signature

    from conveyor.digests import digest_file

    sample: pd.DataFrame = frame.X.head(100)
    with warnings.catch_warnings():  # the hint that integer columns cannot hold NaN
        warnings.simplefilter("ignore", UserWarning)
        schema = infer_signature(sample).inputs
    source = CodeDatasetSource(
        tags={"conveyor.project": cfg.project, "conveyor.pipeline_run": ctx.run_id}
    )
    return MetaDataset(  # type: ignore[abstract]  # `profile` is abstract only for mypy
        source,
        name=f"{cfg.project}/validated",
        digest=digest_file(ctx.inputs["dataset"])[:12],
        schema=schema,
    )
