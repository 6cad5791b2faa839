"""Helpers for the spec tests: parse YAML snippets and collect the reported problems."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping

import pytest

from conveyor.errors import SpecError
from conveyor.spec import LoadedSpec, parse_spec


def _parse(text: str, environ: Mapping[str, str] | None = None) -> LoadedSpec:
    return parse_spec(textwrap.dedent(text), source="conveyor.yaml", environ=environ or {})


def _problems(text: str, environ: Mapping[str, str] | None = None) -> list[str]:
    with pytest.raises(SpecError) as info:
        _parse(text, environ)
    return str(info.value).splitlines()


@pytest.fixture
def parse() -> Callable[..., LoadedSpec]:
    """Parse a dedented YAML snippet named ``conveyor.yaml`` with an empty environment."""
    return _parse


@pytest.fixture
def problems() -> Callable[..., list[str]]:
    """The lines of the SpecError raised for a dedented YAML snippet (fails if none)."""
    return _problems
