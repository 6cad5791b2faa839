"""Reading the YAML: node tree and line numbers, duplicate keys, ``${VAR}`` expansion.

Booleans follow YAML 1.2: only ``true``/``false`` (any case) are booleans. YAML 1.1, which
PyYAML implements, also reads ``on``, ``off``, ``yes``, ``no``, ``y`` and ``n`` as booleans,
which would turn the key ``on:`` (alerts, retraining) and values such as the country code
``NO`` into ``True``/``False``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from conveyor.errors import SpecError
from conveyor.spec._base import RelPath
from conveyor.spec._errors import Problem, format_path

__all__ = ["YamlDocument", "expand_env", "parse_yaml"]

_BOOL_TAG: Final = "tag:yaml.org,2002:bool"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_NULL_TAG: Final = "tag:yaml.org,2002:null"


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass
class _Lines:
    """Line of one key (or list item) and of the keys below it."""

    line: int
    children: dict[str | int, _Lines] = field(default_factory=dict)


@dataclass(frozen=True)
class YamlDocument:
    """A parsed spec file: its data, where each key is, and problems found while reading it."""

    data: dict[Any, Any]
    lines: _Lines
    problems: tuple[Problem, ...]

    def line_of(self, path: RelPath) -> int:
        """Line of the key at ``path``, or of its nearest ancestor that is in the file."""
        node = self.lines
        for part in path:
            child = node.children.get(part)
            if child is None and not isinstance(part, str):
                child = node.children.get(str(part))
            if child is None:
                break
            node = child
        return node.line


_HINTS: Final = {
    "found character '\\t' that cannot start any token": "indent with spaces, not tabs",
    "mapping values are not allowed here": (
        "a ':' followed by a space inside a value needs quotes, or the indentation is off"
    ),
    "could not find expected ':'": "a key is missing its ':', or the indentation is off",
    "expected <block end>, but found": (
        "the indentation of this line does not match the lines above"
    ),
}


def _yaml_error_message(source: str, err: yaml.MarkedYAMLError) -> str:
    mark = err.problem_mark or err.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = err.problem or ""
    if problem.startswith("but found another document"):
        return (
            f"{source}: {where}invalid YAML: a second document starts here ('---'); "
            "a spec is one document, so remove the '---' line or split the file"
        )
    message = f"{source}: {where}invalid YAML: {problem or err.context or 'cannot parse'}"
    if err.context and err.problem:
        message += f" ({err.context}"
        if err.context_mark is not None and err.context_mark is not err.problem_mark:
            message += (
                f" that started on line {err.context_mark.line + 1}, "
                f"column {err.context_mark.column + 1}"
            )
        message += ")"
    for prefix, hint in _HINTS.items():
        if problem.startswith(prefix):
            message += f"; {hint}"
    return message


def parse_yaml(text: str, source: str) -> YamlDocument:
    """Parse ``text`` (named ``source`` in messages) into a :class:`YamlDocument`.

    Raises:
        SpecError: the text is not YAML, is empty, or its top level is not a mapping.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None or (isinstance(node, ScalarNode) and node.tag == _NULL_TAG):
            raise SpecError(
                f"{source}: the file is empty; expected a mapping of sections such as "
                "'name:', 'sources:' and 'model:' (run `conveyor init` for a starting point)"
            )
        if not isinstance(node, MappingNode):
            found = "a list" if isinstance(node, SequenceNode) else f"the value {node.value!r}"
            raise SpecError(
                f"{source}: 1 problem\n  line {node.start_mark.line + 1}: the top level must be "
                f"a mapping of sections such as 'name:', 'sources:' and 'model:', found {found}"
            )
        walker = _Walker(source)
        children = walker.children(node, ())
        lines = _Lines(node.start_mark.line + 1, children)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        raise SpecError(_yaml_error_message(source, err)) from err
    except yaml.YAMLError as err:
        raise SpecError(f"{source}: invalid YAML: {err}") from err
    finally:
        loader.dispose()
    return YamlDocument(data, lines, tuple(walker.problems))


class _Walker:
    """Builds the line tree of a node tree and finds duplicate keys.

    Nodes reached again through an alias share their subtree (built once), which also keeps
    recursive documents finite.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self._done: dict[int, dict[str | int, _Lines]] = {}
        self._open: set[int] = set()  # nodes being walked: meeting one again is a cycle

    def children(self, node: Node, path: RelPath) -> dict[str | int, _Lines]:
        if id(node) in self._open:
            raise SpecError(
                f"{self.source}: 1 problem\n  line {node.start_mark.line + 1}: "
                f"{format_path(path) or 'top level'}: an alias (*name) refers to a value that "
                "contains the alias itself; recursive values are not allowed"
            )
        if id(node) in self._done:
            return self._done[id(node)]
        children: dict[str | int, _Lines] = {}
        self._open.add(id(node))
        if isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                children[index] = _Lines(
                    item.start_mark.line + 1, self.children(item, (*path, index))
                )
        elif isinstance(node, MappingNode):
            self._mapping(node, path, children)
        self._open.discard(id(node))
        self._done[id(node)] = children
        return children

    def _mapping(self, node: MappingNode, path: RelPath, children: dict[str | int, _Lines]) -> None:
        first_line: dict[tuple[str, str], int] = {}
        merged: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                is_list = isinstance(value_node, SequenceNode)
                merged += value_node.value if is_list else [value_node]
                continue
            if not isinstance(key_node, ScalarNode):
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            ident = (key_node.tag, key)
            if ident in first_line:
                self.problems.append(
                    Problem(
                        line,
                        format_path((*path, key)),
                        f"duplicate key {key!r} (also on line {first_line[ident]}); "
                        "YAML keeps only the last one, so remove or rename one of them",
                    )
                )
            else:
                first_line[ident] = line
            children[key] = _Lines(line, self.children(value_node, (*path, key)))
        for source in merged:  # keys written explicitly win over merged ones, as in YAML
            for key, lines in self.children(source, path).items():
                children.setdefault(key, lines)


# --- environment variables -------------------------------------------------------------------

_REFERENCE: Final = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_BODY: Final = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?$", re.DOTALL)
_SYNTAX: Final = "expected ${NAME} or ${NAME:-default} (write $${ for a literal '${')"


def expand_env(
    data: Any, environ: Mapping[str, str], path: RelPath = ()
) -> tuple[Any, list[tuple[RelPath, str]]]:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string value under ``data``.

    ``$${`` stands for a literal ``${``. A default is used when the variable is unset or
    empty (as in the shell). Keys are not expanded, but keys YAML reads as numbers, booleans
    or null become text (``2019:`` → ``"2019"``), as in JSON. ``data`` is not modified.

    Returns:
        The expanded copy, and the problems found (unset variables, malformed references) by
        key path. A string with a problem is left unexpanded.
    """
    problems: list[tuple[RelPath, str]] = []
    if isinstance(data, dict):
        expanded_dict: dict[Any, Any] = {}
        for key, value in data.items():
            text_key = _key_text(key)
            expanded_dict[text_key], found = expand_env(value, environ, (*path, text_key))
            problems += found
        return expanded_dict, problems
    if isinstance(data, list):
        expanded_list: list[Any] = []
        for index, item in enumerate(data):
            value, found = expand_env(item, environ, (*path, index))
            expanded_list.append(value)
            problems += found
        return expanded_list, problems
    if isinstance(data, str) and "${" in data:
        text, messages = _expand_text(data, environ)
        problems += [(path, message) for message in messages]
        return (data if messages else text), problems
    return data, problems


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _expand_text(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    messages: list[str] = []

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        body = match.group("body")
        if body is None:
            messages.append(f"'${{' is not closed by '}}' in {text!r}; {_SYNTAX}")
            return token
        parsed = _BODY.fullmatch(body)
        if parsed is None or "${" in (parsed.group("default") or ""):
            messages.append(f"malformed reference {token!r}; {_SYNTAX}")
            return token
        name, default = parsed.group("name"), parsed.group("default")
        value = environ.get(name)
        if default is not None and not value:
            return default
        if value is None:
            messages.append(
                f"environment variable {name} is not set; set it, "
                f"or give a default: ${{{name}:-value}}"
            )
            return token
        return value

    return _REFERENCE.sub(replace, text), messages
