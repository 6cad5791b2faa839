"""Stable digests for cache keys: canonical JSON, file contents, step code."""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal values always give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest_json(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def digest_file(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def code_version(fn: Callable[..., Any], explicit: str | None = None) -> str:
    """A digest of the source of the module defining ``fn``, plus an explicit version if given.

    The whole module is hashed rather than the function alone, because a step usually calls
    helpers next to it: editing any of them must invalidate the cache. A step whose behaviour
    depends on code elsewhere can say so by bumping ``version:`` in the spec.
    """
    module = inspect.getmodule(fn)
    try:
        source = inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):
        source = ""
    if not source:
        source = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
    return digest_json({"source": source, "version": explicit})[:16]


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
