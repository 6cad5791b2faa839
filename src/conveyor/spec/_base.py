"""Building blocks shared by the section models: the base model, names, durations, problems.

Validators in the section models report problems with :func:`problems_error`, which carries
paths *relative to the model being validated*; the loader appends them to pydantic's ``loc`` so
every message points at the exact key (``model.tune.space.learning_rate.low``), not at the
enclosing mapping.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "PATTERN_EXPLANATIONS",
    "Duration",
    "Identifier",
    "Name",
    "RelPath",
    "Scalar",
    "SpecModel",
    "TagOf",
    "closest",
    "describe_value",
    "did_you_mean",
    "format_duration",
    "parse_duration",
    "problem_error",
    "problems_error",
    "raise_problems",
    "tag_discriminator",
]

RelPath = tuple[str | int, ...]


class SpecModel(BaseModel):
    """Base of every spec model: unknown keys are errors and instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# Pattern -> plain-words explanation, used by the error formatter instead of the raw regex.
PATTERN_EXPLANATIONS: dict[str, str] = {}


def _pattern(pattern: str, explanation: str) -> StringConstraints:
    PATTERN_EXPLANATIONS[pattern] = explanation
    return StringConstraints(pattern=pattern)


NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,62}$"
IDENTIFIER_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"

Name = Annotated[
    str,
    _pattern(
        NAME_PATTERN,
        "a name of lowercase letters, digits, '-' and '_' that starts with a letter or digit"
        " and has at most 63 characters (e.g. 'flights-delay')",
    ),
]
"""A project or step name: lowercase, digits, ``-`` and ``_``; at most 63 characters."""

Identifier = Annotated[
    str,
    _pattern(
        IDENTIFIER_PATTERN,
        "an identifier of letters, digits and '_' that does not start with a digit"
        " (usable as a SQL table or Python name, e.g. 'flights')",
    ),
]
"""A SQL/Python-friendly name: letters, digits and ``_``, not starting with a digit."""


def _scalar(value: Any) -> Any:
    if isinstance(value, dict | list | tuple | set):
        raise problem_error(
            "expected a single value (a string, number or true/false), "
            f"found {describe_value(value)}"
        )
    return value


Scalar = Annotated[
    Any,
    AfterValidator(_scalar),
    WithJsonSchema({"type": ["string", "number", "integer", "boolean", "null"]}),
]
"""One plain value: a string, number, true/false or null (not a list or mapping)."""


class TagOf:
    """Reads a union's tag from ``key``, with a default when the key is left out.

    Used as a pydantic :class:`Discriminator` callable; the loader reads ``key`` to name the
    tag key in error messages.
    """

    def __init__(self, key: str, default: str | None = None) -> None:
        self.key = key
        self.default = default
        self.__name__ = f"the {key!r} key"  # pydantic names the discriminator in its messages

    def __call__(self, value: Any) -> str | None:
        tag = value.get(self.key, self.default) if isinstance(value, dict) else None
        if tag is None and not isinstance(value, dict):
            tag = getattr(value, self.key, None)
        return None if tag is None else str(tag)

    def __repr__(self) -> str:
        return repr(self.key)


def tag_discriminator(key: str, default: str | None = None) -> Discriminator:
    """A discriminator on ``key`` that picks the ``default`` tag when the key is missing."""
    return Discriminator(TagOf(key, default))


# --- durations -------------------------------------------------------------------------------

_UNITS: Final = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_RE: Final = re.compile(r"^(?:\d+[wdhms])+$")
_PART_RE: Final = re.compile(r"(\d+)([wdhms])")
_DURATION_HINT: Final = "a duration such as '30s', '15m', '6h', '1d', '2w' or '1h30m'"


def parse_duration(value: Any) -> Any:
    """Parse ``'6h'``, ``'1d'``, ``'1h30m'`` (units ``w d h m s``) into a :class:`timedelta`.

    A :class:`timedelta` passes through unchanged.

    Raises:
        PydanticCustomError: the value is not a duration with units.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        compact = value.strip().replace(" ", "").lower()
        if compact and _DURATION_RE.fullmatch(compact):
            seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART_RE.findall(compact))
            return timedelta(seconds=seconds)
    hint = "; add a unit: s, m, h, d or w" if isinstance(value, int | float) else ""
    raise problem_error(f"expected {_DURATION_HINT}, found {describe_value(value)}{hint}")


def format_duration(value: timedelta) -> str:
    """Render a :class:`timedelta` canonically (``'1d6h'``, ``'90s'`` → ``'1m30s'``, ``'0s'``)."""
    total = value.total_seconds()
    whole = int(total)
    parts: list[str] = []
    for unit in ("d", "h", "m"):
        count, whole = divmod(whole, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    rest = whole + (total - int(total))
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^(\d+[wdhms])+$", "examples": ["6h", "1d"]}),
]
"""A length of time written with units (``30s``, ``15m``, ``6h``, ``1d``, ``2w``, ``1h30m``)."""


# --- problems --------------------------------------------------------------------------------


def describe_value(value: Any) -> str:
    """Describe a user's value briefly for an error message ("'abc'", "1.5", "a list")."""
    if value is None:
        return "an empty value (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__} ({str(value)[:40]})"


def problems_error(problems: Iterable[tuple[RelPath, str]]) -> PydanticCustomError:
    """Build the error a validator raises for one or more problems at relative key paths.

    The message template is the first problem's message (pydantic shows it when the error is
    not formatted by the spec loader); the loader reads ``ctx["problems"]``.
    """
    items = tuple((tuple(path), message) for path, message in problems)
    first = items[0][1] if items else "invalid value"
    return PydanticCustomError("spec_problems", "{summary}", {"summary": first, "problems": items})


def problem_error(message: str, path: RelPath = ()) -> PydanticCustomError:
    """Build the error for one problem, at ``path`` relative to the value being validated."""
    return problems_error([(path, message)])


def raise_problems(problems: Sequence[tuple[RelPath, str]]) -> None:
    """Raise :func:`problems_error` if ``problems`` is not empty."""
    if problems:
        raise problems_error(problems)


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice nearest to ``word`` (case-insensitive), or None if nothing is close."""
    options = [str(choice) for choice in choices]
    lowered = {option.lower(): option for option in options}
    match = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the nearest choice, or an empty string."""
    match = closest(word, choices)
    return f"; did you mean {match!r}?" if match is not None else ""
