"""Keeping secrets out of lineage records, error messages and logs.

A value is kept when it is a pure ``${VAR}`` reference (optionally after an auth scheme such as
``Bearer``): the placeholder names where the secret comes from without revealing it. Anything
else under a secret-looking name (``Authorization``, ``X-Api-Key``, ``token``, a URL's password)
becomes ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import unquote

__all__ = ["REDACTED", "is_secret_name", "redact_config", "redact_url", "scrub"]

REDACTED: Final = "***"

_SECRET_NAME: Final = re.compile(
    r"auth|token|secret|passw|pwd|api[-_]?key|apikey|cookie|session|signature|^sig$|"
    r"credential|private|access[-_]?key",
    re.IGNORECASE,
)
_PURE_REFERENCE: Final = re.compile(
    r"^(?:(?:Bearer|Basic|Token|Bot)\s+)?\$\{[A-Za-z_][A-Za-z0-9_]*\}$", re.IGNORECASE
)
# Secrets shorter than this are not scrubbed from free text: they would blank out ordinary words.
_MIN_SCRUB_LENGTH: Final = 4


def is_secret_name(name: str) -> bool:
    """Whether a header, parameter or key name usually carries a secret."""
    return bool(_SECRET_NAME.search(name))


def _redact_value(value: Any) -> Any:
    if isinstance(value, str) and _PURE_REFERENCE.match(value.strip()):
        return value
    return REDACTED


def redact_url(url: str) -> str:
    """``url`` with its password and secret-looking query values replaced by ``***``.

    Works for SQLAlchemy URLs (``postgresql+psycopg://user:pw@host/db``) and HTTP URLs alike;
    a ``${VAR}`` placeholder is kept, and text that is not a URL is returned unchanged.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = len(rest)
    for stop in "/?#":
        found = rest.find(stop)
        if found != -1:
            end = min(end, found)
    authority, tail = rest[:end], rest[end:]
    userinfo, at, host = authority.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if colon and password:
            authority = f"{user}:{_redact_value(unquote(password))}@{host}"
    path, question, query = tail.partition("?")
    if question:
        query, hash_sign, fragment = query.partition("#")
        pairs = []
        for pair in query.split("&"):
            key, equals, value = pair.partition("=")
            if equals and value and is_secret_name(unquote(key)):
                value = _redact_value(unquote(value))
            pairs.append(f"{key}{equals}{value}")
        tail = f"{path}?{'&'.join(pairs)}{hash_sign}{fragment}"
    return f"{scheme}://{authority}{tail}"


def redact_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a source's raw (unexpanded) config that is safe to record.

    URLs and paths lose their passwords and secret query values; ``headers`` and ``params``
    under secret-looking names become ``***`` unless they are a pure ``${VAR}`` reference.
    """
    result: dict[str, Any] = {}
    for key, value in raw.items():
        if key in {"url", "path"} and isinstance(value, str):
            result[key] = redact_url(value)
        elif key in {"headers", "params"} and isinstance(value, Mapping):
            result[key] = {
                str(name): _redact_value(item) if is_secret_name(str(name)) else _copy(item)
                for name, item in value.items()
            }
        else:
            result[key] = _copy(value)
    return result


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(item) for item in value]
    return value


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret (longest first) replaced by ``***``."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= _MIN_SCRUB_LENGTH:
            text = text.replace(secret, REDACTED)
    return text
