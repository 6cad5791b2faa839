"""The image's Dockerfile: Conveyor, the project's code and spec, a non-root user."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from conveyor.deploy.k8s._options import Plan
from conveyor.deploy.k8s._pod import APP_DIR, COMMAND, UID

__all__ = ["BASE_IMAGE", "EXTRAS", "dockerfile", "dockerignore"]

BASE_IMAGE: Final = "python:3.11-slim"
#: Drivers for shared backends (PostgreSQL for the metadata store and leases, Redis for the
#: online store, S3 for artifacts). torch is an extra too, left out: it is large.
EXTRAS: Final = ("postgres", "redis", "s3")

_IGNORED: Final = (
    ".conveyor",
    ".git",
    ".venv",
    "venv",
    ".env",
    ".env.*",
    "**/__pycache__",
    "**/*.pyc",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
)


def dockerfile(
    plan: Plan, *, version: str, requirements: bool, pyproject: bool, build_hint: str
) -> str:
    """The Dockerfile's text (after the generated-file header).

    Args:
        plan: The checked options (port and workers of the default command).
        version: The Conveyor version to install.
        requirements: The project has a ``requirements.txt`` to install.
        pyproject: The project is itself a Python package (``pyproject.toml``) to install.
        build_hint: The ``docker build`` command line, for the comment at the top.
    """
    lines = [
        f"# The image of {plan.name}: Conveyor, the project's code (steps.py, ...) and its spec.",
        "# Build it from the project folder:",
        f"#   {build_hint}",
        "# The manifests mount the spec from a ConfigMap over /app/conveyor.yaml, so a spec change",
        "# needs `kubectl apply`, not a new image. No HEALTHCHECK: Kubernetes ignores it and",
        "# probes the server itself, and the controller (same image) listens on no port.",
        f"FROM {BASE_IMAGE}",
        "",
        "ENV PYTHONDONTWRITEBYTECODE=1 \\",
        "    PYTHONUNBUFFERED=1 \\",
        "    PIP_NO_CACHE_DIR=1 \\",
        "    PIP_DISABLE_PIP_VERSION_CHECK=1",
        "",
        "# torch is an extra left out here; add conveyor-ml[torch] to requirements.txt if needed.",
        f'RUN pip install "conveyor-ml[{",".join(EXTRAS)}]=={version}"',
    ]
    if requirements:
        lines += [
            "COPY requirements.txt /tmp/requirements.txt",
            "RUN pip install -r /tmp/requirements.txt",
        ]
    lines += [
        "",
        f"RUN groupadd --gid {UID} conveyor \\",
        f"    && useradd --uid {UID} --gid {UID} --create-home --shell /usr/sbin/nologin conveyor",
        f"WORKDIR {APP_DIR}",
        "# Owned by root: the code is read-only to the server; only .conveyor/ is writable.",
        f"COPY . {APP_DIR}",
    ]
    if pyproject:
        lines.append(f"RUN pip install {APP_DIR}")
    lines += [
        f"RUN mkdir -p {APP_DIR}/.conveyor && chown {UID}:{UID} {APP_DIR}/.conveyor",
        f"USER {UID}:{UID}",
        "",
        f"EXPOSE {plan.port}",
        f"ENTRYPOINT {_exec_form(COMMAND)}",
        "CMD "
        + _exec_form(
            ("serve", "--host", "0.0.0.0", "--port", str(plan.port), "--workers", str(plan.workers))
        ),
    ]
    return "\n".join(lines) + "\n"


def dockerignore(extra: Sequence[str] = ()) -> str:
    """The Dockerfile's own ignore file: local state, virtualenvs and ``.env`` secrets stay out."""
    lines = [
        "# Kept out of the image: local state and caches, virtualenvs, secrets in .env files.",
        *_IGNORED,
        *extra,
    ]
    return "\n".join(lines) + "\n"


def _exec_form(words: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{word}"' for word in words) + "]"
