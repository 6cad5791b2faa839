"""The built-in ``tune`` step: an Optuna study in the metadata store's database."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Final

from conveyor.digests import digest_json
from conveyor.errors import SettingsError
from conveyor.train.steps._common import ModelStepConfig, open_tracking

if TYPE_CHECKING:
    from pathlib import Path

    from conveyor.pipeline import StepContext

__all__ = ["WORKERS_ENV", "tune_step", "tune_workers"]

WORKERS_ENV: Final = "CONVEYOR_TUNE_WORKERS"
"""Worker processes of the ``tune`` step on this machine (``conveyor tune --workers N``)."""

_BUDGET: Final = frozenset({"n_trials", "timeout"})


def tune_workers() -> int:
    """The number of tuning worker processes asked for (default 1).

    Raises:
        SettingsError: ``CONVEYOR_TUNE_WORKERS`` is not a positive integer.
    """
    raw = os.environ.get(WORKERS_ENV, "1").strip()
    try:
        workers = int(raw)
    except ValueError:
        workers = 0
    if workers < 1:
        raise SettingsError(f"{WORKERS_ENV}={raw!r} must be a whole number of at least 1")
    return workers


def tune_step(ctx: StepContext) -> dict[str, Path]:
    """Search the spec's ``tune.space``; outputs the best parameters (JSON).

    Every worker process, on this machine or another sharing the metadata store's database,
    works on one study named after the project, the dataset's digest and the model spec, so
    ``n_trials`` counts over all of them. Each trial is an MLflow child run of a ``tune`` run.
    """
    from conveyor.digests import digest_file
    from conveyor.train.tuning import TrialTracking, run_study, study_name

    cfg = ModelStepConfig.parse(ctx.config)
    tune = cfg.model.tune
    if tune is None:  # pragma: no cover - the step exists only with model.tune
        raise SettingsError("the tune step needs model.tune in the spec")
    dataset = ctx.inputs["dataset"]
    # n_trials and timeout are left out: raising them continues the study instead of
    # starting a new one.
    searched = cfg.model.model_dump(mode="json")
    searched["tune"] = {k: v for k, v in searched["tune"].items() if k not in _BUDGET}
    name = study_name(cfg.project, digest_file(dataset), digest_json(searched))
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no INFO line per study and trial
    tracking = open_tracking(ctx.project_root, cfg.project)
    parent = tracking.client.create_run(
        tracking.experiment_id,
        run_name=f"tune-{ctx.run_id[:8]}",
        tags={"conveyor.pipeline_run": ctx.run_id, "conveyor.step": "tune", "optuna.study": name},
    )
    parent_id = parent.info.run_id
    status = "FAILED"
    try:
        result = run_study(
            dataset=dataset,
            model_spec=cfg.model,
            time_column=cfg.time_column,
            storage_url=tune.storage_url or ctx.store.url,
            study_name=name,
            workers=tune_workers(),
            tracking=TrialTracking(tracking.tracking_uri, tracking.experiment_id, parent_id),
            progress=ctx.progress,
        )
        client = tracking.client
        for key, value in result.best_params.items():
            client.log_param(parent_id, f"best.{key}", value)
        client.log_metric(parent_id, f"best_{result.metric}", result.best_value)
        for state in ("complete", "pruned", "failed"):
            client.log_metric(parent_id, f"trials_{state}", getattr(result, f"n_{state}"))
        status = "FINISHED"
    finally:
        tracking.client.set_terminated(parent_id, status=status)
    out = ctx.output_path("best_params")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = result.to_json() | {"mlflow_run_id": parent_id}
    out.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str), encoding="utf-8")
    ctx.progress(
        1,
        1,
        f"best {result.metric} {result.best_value:.4f} after {result.n_complete} trials "
        f"({result.n_pruned} pruned)",
    )
    return {"best_params": out}
