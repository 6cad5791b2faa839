"""`conveyor init`: lay out a new project folder."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from conveyor.errors import ProjectError
from conveyor.workspace import SPEC_FILENAME, Project

__all__ = ["init_project"]

_NAME = re.compile(r"[^a-z0-9_-]+")


def init_project(directory: Path, *, name: str | None = None) -> Project:
    """Create a project in ``directory``: a commented spec, example steps and data, ``.conveyor/``.

    Existing files are never overwritten: the spec must not exist yet, and the example
    ``steps.py`` and data are only written when absent.

    Raises:
        ProjectError: the folder already holds a spec, or cannot be written.
    """
    root = directory.expanduser().resolve()
    spec_path = root / SPEC_FILENAME
    if spec_path.exists():
        raise ProjectError(
            f"{spec_path} already exists; edit it, or choose another folder for a new project"
        )
    project_name = name or (_NAME.sub("-", root.name.lower()).strip("-_") or "project")
    templates = files("conveyor.templates")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for target, template in (
            (root / "steps.py", "steps.py"),
            (root / "data" / "example.csv", "example.csv"),
        ):
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(templates.joinpath(template).read_text("utf-8"), "utf-8")
        text = (
            templates.joinpath("conveyor.yaml").read_text("utf-8").replace("__NAME__", project_name)
        )
        spec_path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise ProjectError(f"cannot create a project in {root}: {err.strerror or err}") from err
    project = Project(root)
    state = project.ensure_state_dir()
    # Self-ignoring, like .venv: the state folder never ends up in the user's git history.
    (state / ".gitignore").write_text("*\n", encoding="utf-8")
    return project
