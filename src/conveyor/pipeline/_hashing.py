"""Cache keys: what a step's result depends on (its code, config and inputs)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import CodeType
from typing import Any

from conveyor.digests import digest_json


def code_version(fn: Callable[..., Any], explicit: str | None = None) -> str:
    """A digest of ``fn``'s source and of everything it uses from its own module.

    Helpers, classes and constants that the function references by name in its module are
    followed transitively, so editing a helper invalidates the steps that call it, while
    fixing another step in the same file does not. Code elsewhere (other modules, packages)
    is not followed: bump the step's ``version:`` in the spec when such a change matters.
    """
    # The function's globals are its module's namespace, registered in sys.modules or not.
    namespace: dict[str, Any] = getattr(fn, "__globals__", {})
    home = getattr(fn, "__module__", None)
    parts: set[str] = set()
    seen: set[int] = set()
    pending: list[Any] = [fn]
    while pending:
        obj = pending.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        parts.add(_source(obj))
        for name in _referenced_names(obj):
            value = namespace.get(name)
            if (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == home:
                pending.append(value)
            elif isinstance(value, int | float | str | bytes | bool | tuple | frozenset):
                parts.add(f"{name} = {_stable_repr(value)}")
    return digest_json({"code": sorted(parts), "version": explicit})[:16]


def _stable_repr(value: Any) -> str:
    """``repr`` that is the same in every process: sets are sorted (their iteration order
    depends on string hashing, which Python randomises per process)."""
    if isinstance(value, frozenset):
        return "frozenset({" + ", ".join(sorted(_stable_repr(v) for v in value)) + "})"
    if isinstance(value, tuple):
        inner = ", ".join(_stable_repr(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


def _referenced_names(obj: Any) -> set[str]:
    """Global names used by a function (or a class's methods), nested code objects included."""
    codes = []
    if inspect.isclass(obj):
        codes = [v.__code__ for v in vars(obj).values() if inspect.isfunction(v)]
    elif hasattr(obj, "__code__"):
        codes = [obj.__code__]
    names: set[str] = set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(c for c in code.co_consts if isinstance(c, CodeType))
    return names


def cache_key(
    *,
    step: str,
    code: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, str],
    files: Mapping[str, str],
    outputs: list[str],
) -> str:
    return digest_json(
        {
            "step": step,
            "code": code,
            "config": config,
            "inputs": inputs,
            "files": files,
            "outputs": sorted(outputs),
        }
    )
