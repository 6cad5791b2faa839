"""The built-in ``evaluate`` step: holdout metrics, the champion on the same rows, the gate."""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.train.steps._common import (
    ModelStepConfig,
    Tracking,
    load_parts,
    open_tracking,
    read_json,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from conveyor.pipeline import StepContext
    from conveyor.train.algorithms import BaseAlgorithm
    from conveyor.train.evaluation import Evaluation, MetricValue

__all__ = ["evaluate_step", "score"]

logger = logging.getLogger("conveyor.train")


def score(model: BaseAlgorithm, X: pd.DataFrame) -> tuple[Any, Any]:
    """Predicted labels or values, and probabilities for classifiers (else None)."""
    y_pred = model.predict(X)
    y_score = model.predict_proba(X) if model.is_classifier else None
    return y_pred, y_score


def evaluate_step(ctx: StepContext) -> dict[str, Path]:
    """Evaluate the model and the current champion on the same holdout; check the gate.

    Never cached: the champion can change between runs. Writes the model card (HTML and
    Markdown, with plots) to the MLflow run and ``reports/model-card-<run>.html``.
    """
    from conveyor.spec._gate import GateSpec
    from conveyor.train._archive import unpack_model
    from conveyor.train.algorithms import BaseAlgorithm
    from conveyor.train.evaluation import check_gates, evaluate
    from conveyor.train.report import evaluation_plots

    cfg = ModelStepConfig.parse(ctx.config)
    training = read_json(ctx.inputs["training"])
    model = BaseAlgorithm.load(unpack_model(ctx.inputs["model"].read_bytes(), ctx.workdir / "m"))
    frame, parts = load_parts(ctx.inputs["dataset"], cfg)
    X_test, y_test = frame.X.iloc[parts.test], frame.y[parts.test]
    y_pred, y_score = score(model, X_test)
    slices = _slice_values(ctx.inputs["dataset"], cfg.model.slices, parts.test)
    task = cfg.model.task
    ctx.progress(0, None, f"scoring {len(y_test):,} held-out rows with bootstrap intervals")
    evaluation = evaluate(
        task,
        y_test,
        y_pred=y_pred,
        y_score=y_score,
        classes=model.classes_,
        slices=slices,
        seed=cfg.model.split.seed,
    )
    tracking = open_tracking(ctx.project_root, cfg.project)
    champion = _champion(ctx, tracking, cfg, training, X_test, y_test, model.classes_)
    gate_spec = cfg.gate or GateSpec()
    champion_eval = None if champion is None else champion["evaluation"]
    gate = check_gates(
        gate_spec,
        evaluation,
        champion_eval,
        paired=None if champion is None else champion.get("paired"),
    )
    plots = evaluation_plots(task, y_test, y_pred=y_pred, y_score=y_score, classes=model.classes_)
    card = _write_card(ctx, cfg, training, model, evaluation, gate, champion, plots, frame, parts)
    run_id = training["mlflow_run_id"]
    client = tracking.client
    from mlflow.entities import Metric

    now = int(datetime.now(UTC).timestamp() * 1000)
    metrics = []
    for name, value in evaluation.metrics.items():
        for suffix, number in (("", value.value), ("_ci_low", value.low), ("_ci_high", value.high)):
            if number == number:  # not NaN
                metrics.append(Metric(f"test_{name}{suffix}", float(number), now, 0))
    client.log_batch(run_id, metrics=metrics)
    client.set_tag(run_id, "conveyor.gate", "passed" if gate.passed else "failed")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model_card"
        folder.mkdir()
        for name, data in card.items():
            (folder / name).write_bytes(data)
        client.log_artifacts(run_id, str(folder), "model_card")
    out = ctx.output_path("evaluation")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "evaluation": evaluation.to_json(),
        "gate": gate.to_json(),
        "gate_summary": gate.summary(),
        "champion": None
        if champion is None
        else {"version": champion["version"], "evaluation": champion_eval.to_json()},  # type: ignore[union-attr]
        "model_card": str(ctx.project_root / "reports" / card_name(training)),
    }
    out.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    verdict = "passed" if gate.passed else "FAILED"
    ctx.progress(1, 1, f"gate {verdict}: {gate.summary()}")
    return {"evaluation": out}


def card_name(training: dict[str, Any]) -> str:
    """File name of a training run's model card under ``reports/``."""
    return f"model-card-{training['mlflow_run_id'][:12]}.html"


def _slice_values(
    dataset: Path, columns: list[str], rows: np.ndarray[Any, Any]
) -> dict[str, Any] | None:
    if not columns:
        return None
    import pyarrow.parquet as pq

    table = pq.read_table(dataset, columns=columns)
    return {name: table.column(name).to_numpy(zero_copy_only=False)[rows] for name in columns}


def _champion(
    ctx: StepContext,
    tracking: Tracking,
    cfg: ModelStepConfig,
    training: dict[str, Any],
    X_test: pd.DataFrame,
    y_test: Any,
    classes: Any,
) -> dict[str, Any] | None:
    """The champion scored on the challenger's holdout, or None when there is none.

    A champion that cannot score these rows (a feature it needs is gone) is reported and
    treated as absent: the comparison cannot be made fairly.
    """
    from conveyor.errors import ConveyorError
    from conveyor.registry import ModelRegistry
    from conveyor.train.algorithms import BaseAlgorithm
    from conveyor.train.evaluation import compare_paired, evaluate

    registry = ModelRegistry(tracking.client, cfg.project)
    current = registry.alias("champion")
    if current is None or current.tags.get("conveyor.model_sha256") == training["model_sha256"]:
        return None
    folder = registry.download(current.version, ctx.workdir / f"champion-{current.version}")
    champion = BaseAlgorithm.load(folder)
    try:
        c_pred, c_score = score(champion, X_test)
    except ConveyorError as err:
        logger.warning("champion version %s cannot score this holdout: %s", current.version, err)
        return None
    evaluation = evaluate(
        cfg.model.task,
        y_test,
        y_pred=c_pred,
        y_score=c_score,
        classes=champion.classes_,
        seed=cfg.model.split.seed,
    )
    result: dict[str, Any] = {"version": current.version, "evaluation": evaluation}
    comparison = cfg.gate.vs_champion if cfg.gate else None
    if comparison is not None:
        own_pred, own_score = score(BaseAlgorithm.load(ctx.workdir / "m"), X_test)
        needs_score = comparison.metric in _SCORE_METRICS
        try:
            paired: MetricValue = compare_paired(
                cfg.model.task,
                y_test,
                own_score if needs_score else own_pred,
                c_score if needs_score else c_pred,
                comparison.metric,
                classes=classes,
                confidence=comparison.confidence,
                seed=cfg.model.split.seed,
            )
            result["paired"] = paired
        except ValueError as err:
            logger.warning("paired comparison with the champion failed: %s", err)
    return result


_SCORE_METRICS = frozenset({"roc_auc", "pr_auc", "roc_auc_ovr", "log_loss", "brier", "ece"})


def _write_card(
    ctx: StepContext,
    cfg: ModelStepConfig,
    training: dict[str, Any],
    model: BaseAlgorithm,
    evaluation: Evaluation,
    gate: Any,
    champion: dict[str, Any] | None,
    plots: dict[str, bytes],
    frame: Any,
    parts: Any,
) -> dict[str, bytes]:
    from conveyor.train.report import (
        CardInputs,
        feature_importance,
        render_model_card_html,
        render_model_card_markdown,
    )

    classes = None
    if model.classes_ is not None:
        import numpy as np

        labels, counts = np.unique(frame.y[parts.train], return_counts=True)
        classes = {str(k): int(v) for k, v in zip(labels.tolist(), counts.tolist(), strict=True)}
    data: dict[str, Any] = {
        "dataset version": training.get("dataset_version", "unknown"),
        "raw dataset version": training.get("raw_dataset_version", "unknown"),
        "rows (train / validation / test)": f"{len(parts.train):,} / "
        f"{len(parts.validation):,} / {len(parts.test):,}",
    }
    if frame.time is not None:
        data["time range"] = f"{frame.time.min()} to {frame.time.max()}"
    if classes:
        data["training class counts"] = classes
    lineage = {
        "pipeline run": ctx.run_id,
        "MLflow run": training["mlflow_run_id"],
        "model archive sha256": training["model_sha256"],
        "dataset version": training.get("dataset_version", "unknown"),
        "raw dataset version": training.get("raw_dataset_version", "unknown"),
        "validation report sha256": training.get("validation_report", "unknown"),
    }
    champion_info = None
    if champion is not None:
        champion_info = {
            "version": champion["version"],
            "metrics": {
                name: value.value for name, value in champion["evaluation"].metrics.items()
            },
        }
    card = CardInputs(
        project=cfg.project,
        model_name=cfg.project,
        version=None,
        algorithm=cfg.model.algorithm,
        task=cfg.model.task,
        target=cfg.model.target,
        features=dict(model.feature_schema),
        params=dict(training["params"]),
        tuned=training.get("tuned") or None,
        evaluation=evaluation,
        gate=gate,
        champion=champion_info,
        data=data,
        lineage=lineage,
        intended_use=cfg.model.intended_use,
        importance=feature_importance(model),
        plots=plots,
        created_at=datetime.now(UTC),
    )
    html = render_model_card_html(card)
    reports = ctx.project_root / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / card_name(training)).write_text(html, encoding="utf-8")
    files = {
        "model_card.html": html.encode(),
        "model_card.md": render_model_card_markdown(card).encode(),
    }
    return files | dict(plots)
