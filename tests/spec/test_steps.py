"""Custom steps: the shape of ``run`` and ``inputs``, and references between steps."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor.spec import LoadedSpec

Parse = Callable[..., LoadedSpec]
Problems = Callable[..., list[str]]

STEPS = """\
name: demo
steps:
  load:
    run: steps/load.py:load
    outputs: [flights, weather]
    files: [sql/*.sql]
    retries: 2
  clean:
    run: my_project.steps:clean
    inputs:
      rows: {input}
    outputs: [table]
    config: {{min_year: 2013}}
"""


def test_valid_steps(parse: Parse) -> None:
    spec = parse(STEPS.format(input="load.flights")).spec
    assert spec.steps["clean"].inputs == {"rows": "load.flights"}
    assert spec.steps["load"].retries == 2 and spec.steps["load"].cache is True
    assert spec.steps["clean"].retry_backoff_s == 1.0
    assert spec.steps["clean"].config == {"min_year": 2013}


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("laod.flights", "unknown step 'laod' in 'laod.flights'; did you mean 'load'?"),
        ("fetch.flights", "unknown step 'fetch' in 'fetch.flights' (declared steps: 'load')"),
        (
            "load.flight",
            "step 'load' has no output 'flight'; did you mean 'flights'? "
            "(its outputs: 'flights', 'weather')",
        ),
        ("clean.table", "step 'clean' cannot use its own output 'clean.table'"),
        ("flights", "expected 'step.output' (e.g. 'load.flights'), found 'flights'"),
    ],
)
def test_step_inputs(problems: Problems, reference: str, problem: str) -> None:
    assert problems(STEPS.format(input=reference)) == [
        "conveyor.yaml: 1 problem",
        f"  line 11: steps.clean.inputs.rows: {problem}",
    ]


def test_dependency_cycles_are_reported(problems: Problems) -> None:
    assert problems(
        """\
        name: demo
        steps:
          a: {run: "m:a", inputs: {x: c.out}, outputs: [out]}
          b: {run: "m:b", inputs: {x: a.out}, outputs: [out]}
          c: {run: "m:c", inputs: {x: b.out}, outputs: [out]}
        """
    )[1:] == [
        "  line 4: steps.b.inputs.x: steps form a cycle (each needs the next): b -> a -> c -> b"
    ]


@pytest.mark.parametrize("run", ["my_project.steps", "steps/load.py", "load()", "a b:c"])
def test_run_shape(problems: Problems, run: str) -> None:
    lines = problems(f"name: demo\nsteps:\n  load: {{run: '{run}'}}\n")
    assert lines[1].startswith(
        "  line 3: steps.load.run: expected 'module:function' (e.g. 'my_project.steps:clean') "
        "or 'path/to/file.py:function' (e.g. 'steps/clean.py:clean'), found "
    )


def test_step_fields_are_checked(problems: Problems) -> None:
    assert problems(
        """\
        name: demo
        steps:
          Load: {run: "m:f"}
          ok:
            run: "m:f"
            retries: -1
            outputs: [a, a]
            cahce: false
        """
    )[1:] == [
        "  line 3: steps.Load: invalid key: expected a name of lowercase letters, digits, '-' "
        "and '_' that starts with a letter or digit and has at most 63 characters (e.g. "
        "'flights-delay'), found 'Load'",
        "  line 6: steps.ok.retries: expected a number of at least 0, found -1",
        "  line 7: steps.ok.outputs[1]: output 'a' is listed twice",
        "  line 8: steps.ok.cahce: unknown key 'cahce'; did you mean 'cache'?",
    ]


def test_custom_steps_can_use_builtin_step_outputs_when_sources_exist() -> None:
    from conveyor.errors import SpecError
    from conveyor.spec import parse_spec

    base = "name: x\nsources:\n  f: {type: file, path: a.csv}\nsteps:\n"
    ok = parse_spec(base + "  s: {run: m:f, inputs: {d: validate.dataset}, outputs: [o]}\n")
    assert ok.spec.steps["s"].inputs == {"d": "validate.dataset"}
    with pytest.raises(SpecError, match=r"line 5: steps.s.inputs.d: .*did you mean 'dataset'"):
        parse_spec(base + "  s: {run: m:f, inputs: {d: validate.datset}}\n")
    with pytest.raises(SpecError, match="'ingest' is the name of a built-in step"):
        parse_spec(base + "  ingest: {run: m:f}\n")
    with pytest.raises(SpecError, match="runs only when `sources:` are declared"):
        parse_spec("name: x\nsteps:\n  s: {run: m:f, inputs: {d: validate.dataset}}\n")
