"""Where a model was trained: code version, packages and machine, for MLflow runs."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["git_commit", "pip_freeze", "system_info"]


def git_commit(path: Path) -> str | None:
    """The commit checked out at ``path`` (``+dirty`` when files changed), or None outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return commit + ("+dirty" if status.stdout.strip() else "")


def pip_freeze() -> str:
    """``name==version`` of every installed distribution, sorted (like ``pip freeze``)."""
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={dist.version}"
    return "\n".join(seen[key] for key in sorted(seen)) + "\n"


def system_info() -> dict[str, str]:
    """Python, OS and CPU of this machine."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpu_count": str(os.cpu_count() or "unknown"),
        "hostname": platform.node(),
    }
