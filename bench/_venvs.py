"""Virtual environments for benchmark peers whose pins conflict with the project's.

Each peer lives in bench/.venvs/NAME (gitignored), created on first use with pip from the
package index; a marker file holds the requirements it was made with, so changing them
rebuilds it. Used by bench/serving.py (BentoML, LitServe) and bench/monitor.py (Evidently,
NannyML).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / "bench" / ".venvs"


def venv_python(name: str) -> Path:
    """The interpreter of bench/.venvs/NAME (it may not exist yet)."""
    return VENVS / name / "bin" / "python"


def ensure_venv(name: str, requirements: Sequence[str], install: bool) -> str | None:
    """Create bench/.venvs/NAME with ``requirements`` if needed; return why it is unusable."""
    venv = VENVS / name
    marker = venv / ".bench-requirements"
    wanted = "\n".join(requirements)
    if marker.is_file() and marker.read_text() == wanted:
        return None
    if not install:
        return f"no {venv.relative_to(ROOT)} (rerun without --no-install to create it)"
    print(f"creating {venv.relative_to(ROOT)} with pip (once): {' '.join(requirements)}")
    log = VENVS / f"{name}.install.log"
    VENVS.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(venv)],
            [
                str(venv_python(name)),
                *("-m", "pip", "install", "--disable-pip-version-check"),
                *requirements,
            ],
        ]
        for step in steps:
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
                return f"pip could not install {name} (see {log.relative_to(ROOT)})"
    marker.write_text(wanted)
    return None
