"""``${VAR}`` expansion: values, defaults, escapes, and precise errors for unset variables."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor.spec import LoadedSpec, SqlSource, parse_spec

Parse = Callable[..., LoadedSpec]
Problems = Callable[..., list[str]]

SQL = """\
name: demo
sources:
  weather:
    type: sql
    url: ${WEATHER_DB_URL}
    query: select 1
"""


def test_variables_are_expanded_and_raw_keeps_the_reference(parse: Parse) -> None:
    loaded = parse(SQL, {"WEATHER_DB_URL": "postgresql://u:secret@db/w"})
    source = loaded.spec.sources["weather"]
    assert isinstance(source, SqlSource)
    assert source.url == "postgresql://u:secret@db/w"
    assert loaded.raw["sources"]["weather"]["url"] == "${WEATHER_DB_URL}"
    assert "secret" not in repr(loaded.raw)


def test_default_is_used_when_unset_or_empty(parse: Parse) -> None:
    text = "name: demo\ndescription: 'db=${DB:-sqlite:///local.db}'\n"
    assert parse(text).spec.description == "db=sqlite:///local.db"
    assert parse(text, {"DB": ""}).spec.description == "db=sqlite:///local.db"
    assert parse(text, {"DB": "pg"}).spec.description == "db=pg"


def test_empty_default_is_allowed(parse: Parse) -> None:
    assert parse("name: demo\ndescription: 'a${X:-}b'\n").spec.description == "ab"


def test_several_references_in_one_value(parse: Parse) -> None:
    loaded = parse("name: demo\ndescription: ${A}-${B}\n", {"A": "x", "B": "y"})
    assert loaded.spec.description == "x-y"


def test_double_dollar_escapes_a_literal_reference(parse: Parse) -> None:
    loaded = parse(
        "name: demo\ndescription: 'cost $${PRICE} for ${WHO}'\n", {"PRICE": "9", "WHO": "me"}
    )
    assert loaded.spec.description == "cost ${PRICE} for me"


def test_values_in_lists_are_expanded(parse: Parse) -> None:
    loaded = parse(
        """\
        name: demo
        monitor:
          alerts:
            - {on: drift, webhook: "${HOOK}"}
        """,
        {"HOOK": "https://hooks.test/1"},
    )
    assert loaded.spec.monitor.alerts[0].webhook == "https://hooks.test/1"


def test_keys_are_not_expanded(parse: Parse) -> None:
    loaded = parse("name: demo\nsteps:\n  a: {run: 'm:f', config: {'${K}': 1}}\n", {"K": "x"})
    assert loaded.spec.steps["a"].config == {"${K}": 1}


def test_unset_variable_names_variable_path_and_line(problems: Problems) -> None:
    assert problems(SQL) == [
        "conveyor.yaml: 1 problem",
        "  line 5: sources.weather.url: environment variable WEATHER_DB_URL is not set; set it, "
        "or give a default: ${WEATHER_DB_URL:-value}",
    ]


def test_unset_variable_in_a_list_item(problems: Problems) -> None:
    assert problems(
        """\
        name: demo
        monitor:
          alerts:
            - on: drift
              webhook: https://hooks.test/ok
            - on: retrain
              webhook: "${HOOK}"
        """
    )[1:] == [
        "  line 7: monitor.alerts[1].webhook: environment variable HOOK is not set; set it, or "
        "give a default: ${HOOK:-value}"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "'${1X}'",
            "malformed reference '${1X}'; expected ${NAME} or ${NAME:-default} (write $${ for a "
            "literal '${')",
        ),
        (
            "'${A:-${B}}'",
            "malformed reference '${A:-${B}'; expected ${NAME} or ${NAME:-default} (write $${ "
            "for a literal '${')",
        ),
        (
            "'x ${OPEN'",
            "'${' is not closed by '}' in 'x ${OPEN'; expected ${NAME} or ${NAME:-default} "
            "(write $${ for a literal '${')",
        ),
    ],
)
def test_malformed_references(problems: Problems, value: str, message: str) -> None:
    assert problems(f"name: demo\ndescription: {value}\n")[1:] == [
        f"  line 2: description: {message}"
    ]


def test_environ_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_TEST_DESCRIPTION", "from the environment")
    loaded = parse_spec("name: demo\ndescription: ${CONVEYOR_TEST_DESCRIPTION}\n")
    assert loaded.spec.description == "from the environment"
