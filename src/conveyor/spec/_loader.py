"""Loading ``conveyor.yaml``: read, parse, expand variables, validate, report every problem."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from conveyor.digests import digest_json
from conveyor.errors import SpecError
from conveyor.spec._errors import Problem, format_path, render_problems, suppress_under
from conveyor.spec._errors import validation_problems as _validation_problems
from conveyor.spec._root import Spec
from conveyor.spec._yaml import expand_env, parse_yaml
from conveyor.workspace import SPEC_FILENAME

__all__ = ["SPEC_FILENAME", "LoadedSpec", "load_spec", "parse_spec"]


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with where it came from.

    Attributes:
        spec: The validated spec, with environment variables expanded.
        path: The file it was read from, or None when parsed from a string.
        text: The file's text, as read.
        raw: The parsed mapping *before* environment variables were expanded, so configs can
            be recorded without the secrets that variables usually carry. Do not modify it.
        sha256: Hash of the spec's canonical JSON (sorted keys, defaults filled in), so
            comments, formatting and key order do not change it, but any value does.
    """

    spec: Spec
    path: Path | None
    text: str
    raw: Mapping[str, Any]
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", digest_json(self._dump))

    @cached_property
    def _dump(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json", by_alias=True)

    def section_hash(self, *keys: str) -> str:
        """Hash of the canonical JSON of one part of the spec, e.g. ``("steps", "load")``.

        With no keys this is :attr:`sha256`.

        Raises:
            KeyError: there is no such part in the spec.
        """
        value: Any = self._dump
        for depth, key in enumerate(keys):
            if not isinstance(value, dict) or key not in value:
                where = ".".join(keys[: depth + 1])
                raise KeyError(f"the spec has no section {where!r}")
            value = value[key]
        return digest_json(value)


def parse_spec(
    text: str, *, source: str = "<string>", environ: Mapping[str, str] | None = None
) -> LoadedSpec:
    """Parse and validate the text of a spec.

    Args:
        text: YAML text of the spec.
        source: Name of the text in error messages (usually the file's path).
        environ: Variables for ``${VAR}`` expansion; default ``os.environ``.

    Raises:
        SpecError: the text is not valid YAML or not a valid spec. The message names
            ``source`` and lists every problem with its line and key path.
    """
    return _parse(text, source=source, path=None, environ=environ)


def load_spec(path: Path, *, environ: Mapping[str, str] | None = None) -> LoadedSpec:
    """Read, parse and validate a spec file (``path`` may also be the project folder).

    Args:
        path: The spec file, or a folder holding ``conveyor.yaml``.
        environ: Variables for ``${VAR}`` expansion; default ``os.environ``.

    Raises:
        SpecError: the file is missing or unreadable, or its contents are not a valid spec.
    """
    if path.is_dir():
        path = path / SPEC_FILENAME
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise SpecError(f"{path}: no such file; run `conveyor init` to create one") from err
    except OSError as err:
        raise SpecError(f"{path}: cannot be read: {err.strerror or err}") from err
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise SpecError(
            f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
            "save the file as UTF-8"
        ) from err
    return _parse(text, source=str(path), path=path, environ=environ)


def _parse(
    text: str, *, source: str, path: Path | None, environ: Mapping[str, str] | None
) -> LoadedSpec:
    document = parse_yaml(text, source)
    expanded, env_problems = expand_env(document.data, os.environ if environ is None else environ)
    problems = list(document.problems)
    problems += [
        Problem(document.line_of(where), format_path(where), message)
        for where, message in env_problems
    ]
    spec: Spec | None = None
    try:
        spec = Spec.model_validate(expanded)
    except ValidationError as err:
        located = suppress_under(
            _validation_problems(err, Spec), (where for where, _ in env_problems)
        )
        problems += [
            Problem(document.line_of(item.line_path), format_path(item.path), item.message)
            for item in located
        ]
    if problems or spec is None:
        raise SpecError(render_problems(source, problems))
    return LoadedSpec(spec=spec, path=path, text=text, raw=document.data)
