"""The containers' environment: every value comes from the project's Secret, none is inline."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["URL_VARIABLES", "SecretKey", "env_from_secret", "secret_keys", "spec_variables"]

#: The backend URLs Conveyor reads from the environment (``conveyor.workspace``), whether a
#: pod needs it to start (Redis serves only the Redis online feature store), and an example.
URL_VARIABLES: Final = (
    ("CONVEYOR_DB_URL", True, "postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE"),
    ("CONVEYOR_ARTIFACTS_URL", True, "s3://BUCKET/conveyor"),
    ("CONVEYOR_MLFLOW_TRACKING_URI", True, "http://mlflow:5000"),
    ("CONVEYOR_REDIS_URL", False, "redis://HOST:6379/0"),
)

# ${NAME} or ${NAME:-default}, as the spec loader expands them; $${ is a literal '${'.
_REFERENCE: Final = re.compile(
    r"\$\$\{|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<default>:-[^}]*)?\}"
)


@dataclass(frozen=True)
class SecretKey:
    """A key of the project's Secret that the pods read as the environment variable ``name``.

    Attributes:
        name: The key, and the variable it becomes.
        required: Whether a pod needs it to start (``optional: false`` in the manifest).
        example: A placeholder value, for the hints printed after rendering.
    """

    name: str
    required: bool
    example: str


def spec_variables(raw: Mapping[str, Any]) -> dict[str, bool]:
    """The environment variables the spec refers to, each mapped to "has no default".

    The spec is loaded again inside every pod, so each ``${VAR}`` it uses must be set there.
    """
    found: dict[str, bool] = {}

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            for match in _REFERENCE.finditer(value):
                name = match.group("name")
                if name is not None:
                    found[name] = found.get(name, False) or match.group("default") is None

    walk(raw)
    return found


def secret_keys(raw: Mapping[str, Any]) -> list[SecretKey]:
    """Every key the pods take from the Secret: the backend URLs, then the spec's variables."""
    keys = [SecretKey(name, required, example) for name, required, example in URL_VARIABLES]
    known = {key.name for key in keys}
    for name, required in sorted(spec_variables(raw).items()):
        if name not in known:
            keys.append(SecretKey(name, required, "VALUE"))
    return keys


def env_from_secret(secret: str, keys: list[SecretKey]) -> list[dict[str, Any]]:
    """The ``env`` list of a container: one ``secretKeyRef`` per key, in the order given."""
    return [
        {
            "name": key.name,
            "valueFrom": {
                "secretKeyRef": {"name": secret, "key": key.name, "optional": not key.required}
            },
        }
        for key in keys
    ]
