"""Walking pydantic's error ``loc`` through the spec's model types.

Pydantic reports an error at a ``loc`` such as ``('sources', 'flights', 'file', 'path')``:
field aliases, dict keys, list indices, and the tags of discriminated unions. :func:`resolve`
walks the types along it (through ``Annotated``, ``Optional``, dicts, lists and unions) and
returns the key path the user wrote (``sources.flights.path``) and the type found there, from
which the keys or values allowed at that point are read for a "did you mean".
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag
from pydantic.fields import FieldInfo

from conveyor.spec._base import RelPath

__all__ = [
    "Resolved",
    "allowed_values",
    "field_of",
    "is_model",
    "is_union",
    "model_keys",
    "resolve",
    "tag_key",
    "union_members",
    "unwrap",
]


@dataclass(frozen=True)
class Resolved:
    """Where a ``loc`` leads: the printable key path and the type found there."""

    path: RelPath  # as the user wrote it: aliases, no union tags
    annotation: Any  # type at the end of the path, or None when unknown
    discriminator: Any = None  # discriminator of that type, if it is a tagged union
    is_key: bool = False  # the error is about a mapping key, not its value


def unwrap(annotation: Any) -> tuple[Any, Any]:
    """Strip ``Annotated`` and ``Optional``; return the bare type and any discriminator."""
    discriminator = None
    while True:
        if get_origin(annotation) is typing.Annotated:
            for meta in annotation.__metadata__:
                if isinstance(meta, Discriminator):
                    discriminator = meta.discriminator
                elif isinstance(meta, FieldInfo) and meta.discriminator is not None:
                    found = meta.discriminator
                    discriminator = (
                        found.discriminator if isinstance(found, Discriminator) else found
                    )
            annotation = get_args(annotation)[0]
        elif is_union(annotation):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation, discriminator
            annotation = members[0]
        else:
            return annotation, discriminator


def is_union(annotation: Any) -> bool:
    """Whether ``annotation`` is a ``Union`` / ``X | Y``."""
    return get_origin(annotation) in (Union, types.UnionType)


def is_model(annotation: Any) -> bool:
    """Whether ``annotation`` is a pydantic model class."""
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def tag_key(discriminator: Any, union: Any = None) -> str | None:
    """The key holding a union's tag: a field discriminator, ``TagOf.key``, or inferred.

    For any other callable discriminator the key is inferred from ``union``: the one field
    whose ``Literal`` values include each member's ``Tag``.
    """
    if isinstance(discriminator, str):
        return discriminator
    key = getattr(discriminator, "key", None)
    if isinstance(key, str):
        return key
    candidates: set[str] | None = None
    for member in get_args(union) if union is not None else ():
        tags = [meta.tag for meta in getattr(member, "__metadata__", ()) if isinstance(meta, Tag)]
        model, _ = unwrap(member)
        if not tags or not is_model(model):
            return None
        hints = type_hints(model)
        fields = {
            name for name in model.model_fields if tags[0] in (allowed_values(hints[name]) or ())
        }
        candidates = fields if candidates is None else candidates & fields
    return next(iter(candidates)) if candidates is not None and len(candidates) == 1 else None


def union_members(union: Any, discriminator: Any) -> list[tuple[list[str], Any]]:
    """Each member of a union with the tags that select it (its ``Tag`` or tag-field values)."""
    members: list[tuple[list[str], Any]] = []
    key = tag_key(discriminator, union)
    for member in get_args(union):
        tags: list[str] = []
        if get_origin(member) is typing.Annotated:
            tags += [meta.tag for meta in member.__metadata__ if isinstance(meta, Tag)]
        bare, _ = unwrap(member)
        if not tags and key is not None and is_model(bare) and key in bare.model_fields:
            tags += allowed_values(type_hints(bare)[key]) or []
        if is_model(bare):
            tags.append(bare.__name__)  # pydantic's label for members of plain unions
        members.append((tags, member))
    return members


@functools.cache
def type_hints(model: type[BaseModel]) -> dict[str, Any]:
    """Field annotations of ``model`` with their ``Annotated`` metadata (discriminators, tags)."""
    return typing.get_type_hints(model, include_extras=True)


def model_keys(model: type[BaseModel]) -> list[str]:
    """The keys a user may write for ``model`` (aliases where set)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def field_of(model: type[BaseModel], key: Any) -> tuple[str, FieldInfo] | None:
    """The field of ``model`` written as ``key`` (alias or name), if any."""
    for name, info in model.model_fields.items():
        if key in (info.alias, name):
            return name, info
    return None


def allowed_values(annotation: Any) -> list[str] | None:
    """The values a ``Literal`` or ``Enum`` type accepts, as strings."""
    bare, _ = unwrap(annotation)
    if get_origin(bare) is Literal:
        return [str(arg) for arg in get_args(bare)]
    if isinstance(bare, type) and issubclass(bare, Enum):
        return [str(member.value) for member in bare]
    return None


def resolve(root: Any, loc: Sequence[str | int]) -> Resolved:
    """Walk ``loc`` through the types under ``root``; unknown parts are kept as they are."""
    path: list[str | int] = []
    annotation: Any = root
    index = 0
    while index < len(loc):
        part = loc[index]
        annotation, discriminator = unwrap(annotation)
        if part == "[key]":  # the error is about the key just walked, in a mapping of any type
            return Resolved(tuple(path), None, is_key=True)
        if annotation is None:
            path.append(part)
        elif is_union(annotation):
            chosen = next(
                (
                    member
                    for tags, member in union_members(annotation, discriminator)
                    if part in tags
                ),
                None,
            )
            if chosen is None:  # a label we do not know: skip it rather than print it
                annotation = None
            else:
                annotation = chosen
            index += 1
            continue
        elif is_model(annotation):
            found = field_of(annotation, part)
            if found is None:
                path.append(part)
                annotation = None
            else:
                name, info = found
                path.append(info.alias or name)
                annotation = type_hints(annotation)[name]
        elif get_origin(annotation) in (dict, Mapping):
            key_type, value_type = get_args(annotation) or (Any, Any)
            path.append(str(part))
            if index + 1 < len(loc) and loc[index + 1] == "[key]":
                return Resolved(tuple(path), key_type, is_key=True)
            annotation = value_type
        elif get_origin(annotation) in (list, tuple, set, frozenset, Sequence):
            path.append(part)
            annotation = (get_args(annotation) or (Any,))[0]
        else:
            path.append(part)
            annotation = None
        index += 1
    bare, discriminator = unwrap(annotation)
    return Resolved(tuple(path), annotation, discriminator if is_union(bare) else None)
