"""Turning pydantic's validation errors into spec problems a person can act on.

Each problem names the key path the user wrote (see :mod:`conveyor.spec._walk`), says what
was expected and what was found, and suggests the nearest valid key or value for a typo.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from conveyor.spec._base import PATTERN_EXPLANATIONS, RelPath, describe_value, did_you_mean
from conveyor.spec._walk import (
    Resolved,
    allowed_values,
    field_of,
    is_model,
    is_union,
    model_keys,
    resolve,
    tag_key,
    union_members,
    unwrap,
)

__all__ = [
    "Located",
    "Problem",
    "format_path",
    "render_problems",
    "suppress_under",
    "validation_problems",
]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a spec: where (line and key path) and what."""

    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"line {self.line}: {where}{self.message}"


_PLAIN_KEY: Final = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(path: Iterable[str | int]) -> str:
    """``('rollout', 'steps', 2)`` → ``rollout.steps[2]``; odd keys are quoted: ``a["b.c"]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def render_problems(source: str, problems: Iterable[Problem]) -> str:
    """The message of a :class:`SpecError`: a count line, then one line per problem by line."""
    unique = sorted(set(problems))
    count = f"{len(unique)} problem" + ("" if len(unique) == 1 else "s")
    return "\n".join([f"{source}: {count}", *(f"  {problem}" for problem in unique)])


# --- messages --------------------------------------------------------------------------------

_MAPPING = "a mapping (key: value pairs)"
_EXPECTED: Final = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": _MAPPING,
    "model_type": _MAPPING,
    "model_attributes_type": _MAPPING,
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "datetime_type": "a date and time (YYYY-MM-DDTHH:MM:SS)",
    "datetime_parsing": "a date and time (YYYY-MM-DDTHH:MM:SS)",
    "datetime_from_date_parsing": "a date and time (YYYY-MM-DDTHH:MM:SS)",
}


def _plural(count: Any, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _expected(kind: str, ctx: Mapping[str, Any], resolved: Resolved) -> str | None:
    """What was expected, in words, or None when only pydantic's message will do."""
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind in ("literal_error", "enum"):
        allowed = allowed_values(resolved.annotation)
        if allowed:
            return "one of " + ", ".join(repr(value) for value in allowed)
        return "one of " + str(ctx.get("expected", ""))
    bounds = {
        "greater_than": ("gt", "a number greater than {}"),
        "greater_than_equal": ("ge", "a number of at least {}"),
        "less_than": ("lt", "a number less than {}"),
        "less_than_equal": ("le", "a number of at most {}"),
    }
    if kind in bounds:
        name, template = bounds[kind]
        return template.format(ctx.get(name))
    if kind == "too_short":
        return "at least " + _plural(ctx.get("min_length"), "item")
    if kind == "too_long":
        return "at most " + _plural(ctx.get("max_length"), "item")
    if kind == "string_too_short":
        length = ctx.get("min_length")
        return "a non-empty string" if length == 1 else f"a string of at least {length} characters"
    if kind == "string_too_long":
        return f"a string of at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        return PATTERN_EXPLANATIONS.get(pattern, f"a string matching {pattern}")
    return None


def _value_message(error: Mapping[str, Any], resolved: Resolved) -> str:
    kind, value = error["type"], error.get("input")
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    expected = _expected(kind, ctx, resolved)
    if expected is None:
        return f"{error['msg'][:1].lower()}{error['msg'][1:]}, found {describe_value(value)}"
    message = f"expected {expected}, found {describe_value(value)}"
    if kind in ("literal_error", "enum") and isinstance(value, str):
        message += did_you_mean(value, allowed_values(resolved.annotation) or [])
    elif kind == "string_type" and isinstance(value, int | float | bool):
        message += "; put it in quotes to make it a string"
    if resolved.is_key:
        message = f"invalid key: {message}"
    return message


@dataclass(frozen=True)
class Located:
    """A problem located by key path; ``line_path`` is the key whose line is reported."""

    path: RelPath
    message: str
    line_path: RelPath


def validation_problems(error: ValidationError, root: type[BaseModel]) -> list[Located]:
    """Every problem in ``error`` (raised validating ``root``), located by the user's key path."""
    located: list[Located] = []
    for item in error.errors(include_url=False):
        loc: tuple[str | int, ...] = tuple(item["loc"])
        kind: str = item["type"]
        ctx: Mapping[str, Any] = item.get("ctx") or {}
        if kind == "spec_problems":
            for relative, message in ctx["problems"]:
                path = resolve(root, (*loc, *relative)).path
                located.append(Located(path, message, path))
        elif kind == "extra_forbidden":
            located.append(_unknown_key(root, loc))
        elif kind == "missing":
            path = resolve(root, loc).path
            located.append(Located(path, _missing(root, loc, path), path[:-1]))
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            located.append(_bad_tag(root, loc, kind, item.get("input"), ctx))
        else:
            resolved = resolve(root, loc)
            if resolved.discriminator is not None and _EXPECTED.get(kind) == _MAPPING:
                # a tagged union given a scalar or list: say which tag key the mapping needs
                located.append(_bad_tag(root, loc, "union_tag_not_found", item.get("input"), ctx))
                continue
            located.append(Located(resolved.path, _value_message(item, resolved), resolved.path))
    return located


def _unknown_key(root: type[BaseModel], loc: tuple[str | int, ...]) -> Located:
    parent = resolve(root, loc[:-1])
    key = loc[-1]
    model, _ = unwrap(parent.annotation)
    allowed = model_keys(model) if is_model(model) else []
    hint = did_you_mean(str(key), allowed)
    if not hint and allowed:
        hint = "; allowed keys: " + ", ".join(allowed)
    path = (*parent.path, key)
    return Located(path, f"unknown key {key!r}{hint}", path)


def _missing(root: type[BaseModel], loc: tuple[str | int, ...], path: RelPath) -> str:
    message = f"missing required key {path[-1]!r}" if path else "missing value"
    model, _ = unwrap(resolve(root, loc[:-1]).annotation)
    found = field_of(model, loc[-1]) if is_model(model) and loc else None
    if found is not None and found[1].description:
        message += f" ({found[1].description.rstrip('.')})"
    return message


def _bad_tag(
    root: type[BaseModel],
    loc: tuple[str | int, ...],
    kind: str,
    value: Any,
    ctx: Mapping[str, Any],
) -> Located:
    resolved = resolve(root, loc)
    bare, _ = unwrap(resolved.annotation)
    key = tag_key(resolved.discriminator, bare if is_union(bare) else None) or "type"
    tags: list[str] = []
    if is_union(bare):
        for member_tags, member in union_members(bare, resolved.discriminator):
            model, _ = unwrap(member)
            tags += [tag for tag in member_tags if tag != getattr(model, "__name__", None)]
    choices = ", ".join(repr(tag) for tag in tags)
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        path = (*resolved.path, key)
        message = f"unknown {key} {tag!r}; expected one of {choices}{did_you_mean(tag, tags)}"
        return Located(path, message, path)
    if not isinstance(value, dict):
        message = (
            f"expected a mapping with a {key!r} key (one of {choices}), "
            f"found {describe_value(value)}"
        )
        return Located(resolved.path, message, resolved.path)
    path = (*resolved.path, key)
    return Located(path, f"missing required key {key!r} (one of {choices})", resolved.path)


def suppress_under(located: Iterable[Located], prefixes: Iterable[RelPath]) -> list[Located]:
    """Drop problems at or under any of ``prefixes`` (already reported another way)."""
    blocked = list(prefixes)
    return [
        item
        for item in located
        if not any(item.path[: len(prefix)] == prefix for prefix in blocked)
    ]
