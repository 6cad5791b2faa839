"""Pydantic's error locations map to the key paths users write, whatever the type nesting."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from conveyor.spec._base import tag_discriminator
from conveyor.spec._errors import format_path, validation_problems


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cat(_Base):
    kind: Literal["cat"]
    lives: int = 9


class Dog(_Base):
    kind: Literal["dog"]
    good: bool = True


class Kitten(_Base):
    kind: Literal["cat"] = "cat"
    lives: int = 9


def _kind(value: object) -> str | None:
    return value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)


class Root(_Base):
    by_field: dict[str, Annotated[Cat | Dog, Field(discriminator="kind")]] = {}
    by_callable: list[
        Annotated[
            Annotated[Cat, Tag("cat")] | Annotated[Dog, Tag("dog")],
            Discriminator(_kind),
        ]
    ] = []
    with_default: (
        Annotated[
            Annotated[Kitten, Tag("cat")] | Annotated[Dog, Tag("dog")],
            tag_discriminator("kind", default="cat"),
        ]
        | None
    ) = None
    plain: Cat | Dog | None = None
    scalars: int | str | None = None
    aliased: int = Field(0, alias="renamed")


def _paths(data: object) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        Root.model_validate(data)
    return sorted(
        (format_path(item.path), item.message) for item in validation_problems(info.value, Root)
    )


def test_tags_of_field_discriminators_are_dropped() -> None:
    assert _paths({"by_field": {"tom": {"kind": "cat", "lives": "x", "lifes": 1}}}) == [
        ("by_field.tom.lifes", "unknown key 'lifes'; did you mean 'lives'?"),
        ("by_field.tom.lives", "expected an integer, found 'x'"),
    ]


def test_tags_of_callable_discriminators_are_dropped() -> None:
    assert _paths({"by_callable": [{"kind": "dog"}, {"kind": "dog", "godo": 1}]}) == [
        ("by_callable[1].godo", "unknown key 'godo'; did you mean 'good'?"),
    ]
    assert _paths({"by_callable": [{"kind": "dgo"}]}) == [
        (
            "by_callable[0].kind",
            "unknown kind 'dgo'; expected one of 'cat', 'dog'; did you mean 'dog'?",
        ),
    ]


def test_default_tag_and_optional() -> None:
    assert _paths({"with_default": {"lifes": 3}}) == [
        ("with_default.lifes", "unknown key 'lifes'; did you mean 'lives'?"),
    ]


def test_member_names_of_plain_unions_are_dropped() -> None:
    paths = _paths({"plain": {"kind": "cat", "lives": "many"}})
    assert ("plain.lives", "expected an integer, found 'many'") in paths
    assert all(not path.startswith(("plain.Cat", "plain.Dog")) for path, _ in paths)


def test_type_labels_of_scalar_unions_are_dropped() -> None:
    paths = _paths({"scalars": [1]})
    assert {path for path, _ in paths} == {"scalars"}


def test_aliases_are_printed() -> None:
    assert _paths({"renamed": "x"}) == [("renamed", "expected an integer, found 'x'")]
