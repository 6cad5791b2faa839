"""Builds the pipeline a spec describes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.pipeline._graph import Pipeline
from conveyor.pipeline._step import Step, load_callable

if TYPE_CHECKING:
    from conveyor.spec import LoadedSpec

__all__ = ["pipeline_from_spec"]


def pipeline_from_spec(loaded: LoadedSpec, project_root: Path) -> Pipeline:
    """The spec's ``steps:`` as a :class:`Pipeline`; functions are imported from the project.

    Built-in steps (``ingest`` and ``validate`` when there are ``sources:``; with ``model:``
    also ``tune``, ``train``, ``evaluate`` and ``register``) come first, then the custom
    steps, which may take their outputs as inputs.

    Raises:
        PipelineError: a step function cannot be imported, or the graph is invalid.
    """
    from conveyor.data import builtin_steps
    from conveyor.train.steps import model_steps

    spec = loaded.spec
    custom = [
        Step(
            name=name,
            fn=load_callable(step.run, project_root),
            inputs=dict(step.inputs),
            files=tuple(step.files),
            outputs=tuple(step.outputs),
            config=dict(step.config),
            retries=step.retries,
            retry_backoff_s=step.retry_backoff_s,
            cache=step.cache,
            version=step.version,
        )
        for name, step in spec.steps.items()
    ]
    return Pipeline([*builtin_steps(loaded, project_root), *model_steps(loaded), *custom])
