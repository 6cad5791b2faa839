"""``steps:`` — the user's own pipeline steps: a Python function, its inputs and outputs.

A step is cached: it is skipped when its code version, its config (see
:meth:`LoadedSpec.section_hash`) and the hashes of its inputs are unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import Field, field_validator

from conveyor.spec._base import (
    Identifier,
    RelPath,
    SpecModel,
    did_you_mean,
    problem_error,
    problems_error,
)

__all__ = ["BUILTIN_STEPS", "MODEL_STEPS", "StepSpec", "step_problems"]

_MODULE_RUN: Final = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_FILE_RUN: Final = re.compile(r"^[^:]+\.py:[A-Za-z_]\w*$")
_INPUT: Final = re.compile(r"^(?P<step>[a-z0-9][a-z0-9_-]{0,62})\.(?P<output>[A-Za-z_]\w*)$")
_RUN_HELP: Final = (
    "expected 'module:function' (e.g. 'my_project.steps:clean') or "
    "'path/to/file.py:function' (e.g. 'steps/clean.py:clean')"
)


class StepSpec(SpecModel):
    """One custom pipeline step: a function called with its inputs and ``config``."""

    run: str = Field(
        description="Function to call: 'module:function' or 'path/to/file.py:function' "
        "(the path is relative to the project)."
    )
    inputs: dict[Identifier, str] = Field(
        default_factory=dict,
        description="Arguments from other steps: local name -> 'step.output'.",
    )
    files: list[str] = Field(
        default_factory=list,
        description="Files or globs (relative to the project) whose contents are part of the "
        "step's cache key, e.g. SQL or lookup tables it reads.",
    )
    outputs: list[Identifier] = Field(
        default_factory=list, description="Names of the values the function returns."
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments passed to the function."
    )
    retries: int = Field(0, ge=0, description="Times a failed call is retried.")
    retry_backoff_s: float = Field(
        1.0, ge=0, description="Seconds before the first retry; doubled for each further one."
    )
    cache: bool = Field(True, description="Skip the step when nothing it depends on changed.")
    version: str | None = Field(
        None,
        description="Version of the step's code; bump it to invalidate the cache when the "
        "code changes in ways its file hash does not show.",
    )
    description: str = Field("", description="What the step does.")

    @field_validator("run")
    @classmethod
    def _run_shape(cls, value: str) -> str:
        if _MODULE_RUN.fullmatch(value) or _FILE_RUN.fullmatch(value):
            return value
        hint = "; name the function after a ':'" if ":" not in value else ""
        raise problem_error(f"{_RUN_HELP}, found {value!r}{hint}")

    @field_validator("inputs")
    @classmethod
    def _input_shape(cls, value: dict[str, str]) -> dict[str, str]:
        problems = [
            (
                (name,),
                f"expected 'step.output' (e.g. 'load.flights'), found {reference!r}",
            )
            for name, reference in value.items()
            if not _INPUT.fullmatch(reference)
        ]
        if problems:
            raise problems_error(problems)
        return value

    @field_validator("outputs")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        for index, name in enumerate(value):
            if name in value[:index]:
                raise problem_error(f"output {name!r} is listed twice", (index,))
        return value


#: The built-in steps a spec with ``sources:`` gets, and their outputs, which custom steps may
#: take as inputs (e.g. ``validate.dataset``, the validated snapshot as Parquet).
BUILTIN_STEPS: Mapping[str, tuple[str, ...]] = {
    "ingest": ("snapshot", "version"),
    "validate": ("dataset", "report"),
}

#: The built-in steps a spec with ``sources:`` and ``model:`` gets besides ``BUILTIN_STEPS``
#: (``tune`` only with ``model.tune``).
MODEL_STEPS: Mapping[str, tuple[str, ...]] = {
    "tune": ("best_params",),
    "train": ("model", "training"),
    "evaluate": ("evaluation",),
    "register": ("version",),
}


def step_problems(
    steps: Mapping[str, StepSpec], builtin: Mapping[str, Sequence[str]] | None = None
) -> list[tuple[RelPath, str]]:
    """Problems with how ``steps`` refer to each other, with paths relative to ``steps``.

    Every input must name a declared (or built-in) step and one of its outputs, custom steps
    must not take a built-in step's name, and the steps must not depend on each other in a
    cycle.
    """
    builtin = builtin or {}
    outputs_of: dict[str, Sequence[str]] = {
        **builtin,
        **{name: step.outputs for name, step in steps.items()},
    }
    problems: list[tuple[RelPath, str]] = [
        ((name,), f"{name!r} is the name of a built-in step; choose another name")
        for name in steps
        if name in builtin
    ]
    for name, step in steps.items():
        for local, reference in step.inputs.items():
            match = _INPUT.fullmatch(reference)
            if match is None:  # already reported by StepSpec
                continue
            source, output = match["step"], match["output"]
            path: RelPath = (name, "inputs", local)
            if source == name:
                problems.append((path, f"step {name!r} cannot use its own output {reference!r}"))
            elif source not in outputs_of and source in BUILTIN_STEPS:
                problems.append(
                    (path, f"the built-in step {source!r} runs only when `sources:` are declared")
                )
            elif source not in outputs_of:
                declared = ", ".join(repr(s) for s in outputs_of if s != name) or "none"
                problems.append(
                    (
                        path,
                        f"unknown step {source!r} in {reference!r}"
                        f"{did_you_mean(source, outputs_of) or f' (declared steps: {declared})'}",
                    )
                )
            elif output not in outputs_of[source]:
                outputs = outputs_of[source]
                listed = ", ".join(repr(o) for o in outputs) if outputs else "none declared"
                problems.append(
                    (
                        path,
                        f"step {source!r} has no output {output!r}"
                        f"{did_you_mean(output, outputs)} (its outputs: {listed})",
                    )
                )
    if not problems:
        problems.extend(_cycle_problems(steps))
    return problems


def _cycle_problems(steps: Mapping[str, StepSpec]) -> list[tuple[RelPath, str]]:
    """One problem per dependency cycle, at the input that closes it."""
    parents = {
        name: [
            (local, ref.split(".", 1)[0])
            for local, ref in step.inputs.items()
            if ref.split(".", 1)[0] in steps  # built-in steps never depend on custom ones
        ]
        for name, step in steps.items()
    }
    done: set[str] = set()
    problems: list[tuple[RelPath, str]] = []

    def visit(name: str, trail: list[str]) -> None:
        trail.append(name)
        for local, parent in parents[name]:
            if parent in trail:
                loop = trail[trail.index(parent) :]  # ends with `name`, which needs `parent`
                cycle = [name, *loop[:-1], name]
                problems.append(
                    (
                        (name, "inputs", local),
                        "steps form a cycle (each needs the next): " + " -> ".join(cycle),
                    )
                )
            elif parent not in done:
                visit(parent, trail)
        trail.pop()
        done.add(name)

    for name in steps:
        if name not in done:
            visit(name, [])
    return problems
