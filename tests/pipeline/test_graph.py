"""Invalid pipelines are refused before anything runs, with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.errors import PipelineError
from conveyor.pipeline import Pipeline, Step, StepContext, load_callable


def noop(ctx: StepContext) -> None:
    pass


def test_topological_order_is_deterministic() -> None:
    steps = [
        Step("c", noop, inputs={"x": "a.o", "y": "b.o"}),
        Step("b", noop, outputs=("o",)),
        Step("a", noop, outputs=("o",)),
    ]
    assert Pipeline(steps).order == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([Step("a", noop), Step("a", noop)], "two steps are named 'a'"),
        (
            [Step("a", noop, outputs=("o",)), Step("b", noop, inputs={"x": "aa.o"})],
            "unknown step 'aa'; did you mean 'a'",
        ),
        (
            [Step("a", noop, outputs=("o",)), Step("b", noop, inputs={"x": "a.p"})],
            "does not declare.*declared: o",
        ),
        ([Step("a", noop, inputs={"x": "noperiod"})], "must look like 'step.output'"),
        (
            [
                Step("a", noop, outputs=("o",), inputs={"x": "b.o"}),
                Step("b", noop, outputs=("o",), inputs={"x": "a.o"}),
            ],
            "cycle",
        ),
    ],
)
def test_invalid_pipelines(steps: list[Step], message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        Pipeline(steps)


def test_load_callable_from_project_file_and_errors(tmp_path: Path) -> None:
    (tmp_path / "steps.py").write_text("def go(ctx):\n    return {'o': 'one'}\n")
    first = load_callable("steps:go", tmp_path)
    assert first.__module__ != "steps"  # per-project module name, never a shared cache entry
    other = tmp_path / "other"
    other.mkdir()
    (other / "steps.py").write_text("def go(ctx):\n    return {'o': 'two'}\n")
    second = load_callable("steps:go", other)
    assert first(None) == {"o": "one"}  # type: ignore[arg-type]
    assert second(None) == {"o": "two"}  # type: ignore[arg-type]
    with pytest.raises(PipelineError, match="has no function 'nope'"):
        load_callable("steps:nope", tmp_path)
    with pytest.raises(PipelineError, match="cannot import 'missing_mod'"):
        load_callable("missing_mod:go", tmp_path)
    with pytest.raises(PipelineError, match="must look like"):
        load_callable("steps", tmp_path)
