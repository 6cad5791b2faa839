"""A pipeline: steps checked for unique names, resolvable inputs and no cycles."""

from __future__ import annotations

import difflib
import graphlib
from collections.abc import Iterable, Iterator

from conveyor.errors import PipelineError
from conveyor.pipeline._step import Step

__all__ = ["Pipeline"]


class Pipeline:
    """An immutable DAG of steps, iterated in a deterministic topological order."""

    def __init__(self, steps: Iterable[Step]) -> None:
        self._steps: dict[str, Step] = {}
        for step in steps:
            if step.name in self._steps:
                raise PipelineError(f"two steps are named {step.name!r}; step names must be unique")
            self._steps[step.name] = step
        for step in self._steps.values():
            self._check_inputs(step)
        self._order = self._sort()

    def _check_inputs(self, step: Step) -> None:
        for local, ref in step.inputs.items():
            upstream, dot, output = ref.partition(".")
            if not dot or not output:
                raise PipelineError(
                    f"step {step.name!r} input {local!r} = {ref!r} must look like 'step.output'"
                )
            if upstream not in self._steps:
                near = difflib.get_close_matches(upstream, self._steps, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise PipelineError(
                    f"step {step.name!r} input {local!r} reads from unknown step {upstream!r}{hint}"
                )
            if output not in self._steps[upstream].outputs:
                declared = ", ".join(self._steps[upstream].outputs) or "none"
                raise PipelineError(
                    f"step {step.name!r} input {local!r} reads output {output!r}, which step "
                    f"{upstream!r} does not declare (declared: {declared})"
                )

    def _sort(self) -> list[str]:
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        # Sorting names first makes the order deterministic among independent steps.
        for name in sorted(self._steps):
            sorter.add(name, *sorted(self._steps[name].upstream()))
        try:
            return list(sorter.static_order())
        except graphlib.CycleError as err:
            cycle = " -> ".join(err.args[1])
            raise PipelineError(
                f"the steps form a cycle: {cycle}; a step cannot depend on itself"
            ) from err

    def __iter__(self) -> Iterator[Step]:
        return (self._steps[name] for name in self._order)

    def __len__(self) -> int:
        return len(self._steps)

    def __getitem__(self, name: str) -> Step:
        return self._steps[name]

    def upto(self, name: str) -> Pipeline:
        """The sub-pipeline that runs ``name``: the step and everything upstream of it.

        Raises:
            PipelineError: no step is called ``name``.
        """
        if name not in self._steps:
            known = ", ".join(self._order) or "none"
            raise PipelineError(f"the pipeline has no step {name!r} (steps: {known})")
        wanted: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop()
            if current not in wanted:
                wanted.add(current)
                pending.extend(self._steps[current].upstream())
        return Pipeline(self._steps[n] for n in self._order if n in wanted)

    @property
    def order(self) -> list[str]:
        return list(self._order)
