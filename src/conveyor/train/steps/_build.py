"""The model steps a spec declares: ``tune`` (with ``model.tune``), ``train``, ``evaluate``,
``register``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conveyor.pipeline import Step
    from conveyor.spec import LoadedSpec

__all__ = ["model_steps"]


def model_steps(loaded: LoadedSpec) -> list[Step]:
    """The model steps of a spec with ``sources:`` and ``model:`` (none otherwise).

    ``tune`` and ``train`` are cached on the validated dataset and the model spec; training
    is deterministic, so a cached model is the model a re-run would give. ``evaluate`` and
    ``register`` always run, because the champion they compare with may have changed.
    """
    from conveyor.pipeline import Step
    from conveyor.train.steps._evaluate import evaluate_step
    from conveyor.train.steps._register import register_step
    from conveyor.train.steps._train import train_step
    from conveyor.train.steps._tune import tune_step

    spec = loaded.spec
    if not spec.sources or spec.model is None:
        return []
    model = spec.model.model_dump(mode="json")
    base = {
        "project": spec.name,
        "model": model,
        "time_column": spec.dataset.time_column if spec.dataset else None,
    }
    data = {"dataset": "validate.dataset", "version": "ingest.version"}
    steps: list[Step] = []
    train_inputs = dict(data)
    if spec.model.tune is not None:
        steps.append(Step("tune", tune_step, inputs=data, outputs=("best_params",), config=base))
        train_inputs["best_params"] = "tune.best_params"
    gate = spec.gate.model_dump(mode="json") if spec.gate else None
    steps += [
        Step("train", train_step, inputs=train_inputs, outputs=("model", "training"), config=base),
        Step(
            "evaluate",
            evaluate_step,
            inputs={"dataset": "validate.dataset", "model": "train.model"}
            | {"training": "train.training"},
            outputs=("evaluation",),
            config=base | {"gate": gate},
            cache=False,
        ),
        Step(
            "register",
            register_step,
            inputs={"training": "train.training", "evaluation": "evaluate.evaluation"},
            outputs=("version",),
            config=base | {"gate": gate, "spec_sha256": loaded.sha256},
            cache=False,
        ),
    ]
    return steps
