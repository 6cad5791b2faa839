"""The pipeline runner: a DAG of cached, resumable, retryable steps."""

from conveyor.pipeline._events import RunReporter
from conveyor.pipeline._from_spec import pipeline_from_spec
from conveyor.pipeline._graph import Pipeline
from conveyor.pipeline._liveness import is_alive, reap_stale_runs
from conveyor.pipeline._runner import Runner, RunResult
from conveyor.pipeline._step import Step, StepContext, StepFunction, load_callable

__all__ = [
    "Pipeline",
    "RunReporter",
    "RunResult",
    "Runner",
    "Step",
    "StepContext",
    "StepFunction",
    "is_alive",
    "load_callable",
    "pipeline_from_spec",
    "reap_stale_runs",
]
