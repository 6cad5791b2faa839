"""Invoke the real `conveyor` app in-process, in an isolated project folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from conveyor.cli import app
from conveyor.cli._console import console, err_console

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Settings come from the environment first: a developer's own overrides must not leak in.
    for name in (
        "CONVEYOR_DB_URL",
        "CONVEYOR_ARTIFACTS_URL",
        "MLFLOW_TRACKING_URI",
        "CONVEYOR_REDIS_URL",
        "CONVEYOR_DEBUG",
    ):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Invoke:
    monkeypatch.chdir(tmp_path)
    for each in (console, err_console):  # wide enough that tables do not wrap their cells
        monkeypatch.setattr(each, "width", 200)

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), catch_exceptions=False)

    return run
