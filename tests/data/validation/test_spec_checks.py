"""The ``schema.checks`` keys this package adds: ``freshness`` and ``sql``."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from conveyor.errors import SpecError
from conveyor.spec import ChecksSpec, Spec, SqlCheck, parse_spec

SPEC = """\
name: demo
sources:
  flights: {type: file, path: flights.csv}
dataset: {time_column: time_hour}
schema:
  checks:
    freshness: 1d6h
    sql:
      - name: no_negative_distance
        query: select * from dataset where distance < 0
        description: distances are never negative
      - {name: known_origin, query: "select * from dataset where origin not in ('EWR', 'JFK')"}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(textwrap.dedent(text), source="conveyor.yaml", environ={})
    return str(info.value).splitlines()[1:]


def test_freshness_and_sql_checks_parse() -> None:
    spec = parse_spec(SPEC, source="conveyor.yaml", environ={}).spec
    assert spec.schema_ is not None
    checks = spec.schema_.checks
    assert checks.freshness == timedelta(days=1, hours=6)
    assert checks.sql == [
        SqlCheck(
            name="no_negative_distance",
            query="select * from dataset where distance < 0",
            description="distances are never negative",
        ),
        SqlCheck(
            name="known_origin", query="select * from dataset where origin not in ('EWR', 'JFK')"
        ),
    ]


def test_new_keys_default_to_no_check_and_round_trip() -> None:
    assert ChecksSpec().freshness is None and ChecksSpec().sql == []
    spec = parse_spec(SPEC, source="conveyor.yaml", environ={}).spec
    dumped = spec.model_dump(mode="json", by_alias=True)
    assert dumped["schema"]["checks"]["freshness"] == "1d6h"
    assert Spec.model_validate(dumped) == spec


def test_bad_freshness_and_sql_checks_are_reported_with_their_keys() -> None:
    text = """\
    name: demo
    schema:
      checks:
        freshness: 6
        sql:
          - {name: same, query: select 1}
          - {name: same, query: ""}
          - {name: other, query: select 1, severity: high}
    """
    problems = _problems(text)
    assert len(problems) == 3, problems
    assert problems[0].startswith("  line 4: schema.checks.freshness: expected a duration")
    assert problems[0].endswith("found 6; add a unit: s, m, h, d or w")
    assert problems[1].startswith("  line 7: schema.checks.sql[1].query:")
    assert problems[2] == (
        "  line 8: schema.checks.sql[2].severity: unknown key 'severity'; "
        "allowed keys: name, query, description"
    )
    duplicate = _problems("name: demo\nschema:\n  checks:\n    sql:\n"
                          "      - {name: same, query: select 1}\n"
                          "      - {name: same, query: select 2}\n")  # fmt: skip
    assert duplicate == [
        "  line 6: schema.checks.sql[1].name: another sql check is already named 'same'"
    ]


def test_every_new_field_is_documented() -> None:
    for model in (ChecksSpec, SqlCheck):
        schema = model.model_json_schema()
        undocumented = [k for k, v in schema["properties"].items() if "description" not in v]
        assert undocumented == [], model.__name__
    assert "6h" in str(ChecksSpec.model_json_schema()["properties"]["freshness"])
