"""`conveyor --help` and `import conveyor...` stay fast: heavy libraries load only when used."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

HEAVY = [
    "mlflow",
    "sklearn",
    "optuna",
    "torch",
    "onnxruntime",
    "lightgbm",
    "xgboost",
    "pandas",
    "numpy",
    "scipy",
    "duckdb",
    "pyarrow",
    "pandera",
    "httpx",
]

CLI_PROBE = """
import sys
from conveyor.cli import app
from typer.testing import CliRunner
result = CliRunner().invoke(app, ["--help"])
assert result.exit_code == 0, result.output
import conveyor, conveyor.errors, conveyor.workspace
heavy = set(sys.argv[1].split(",")) | {"sqlalchemy", "alembic"}
print(",".join(sorted({m.split(".")[0] for m in sys.modules} & heavy)))
"""

MODULE_PROBE = """
import importlib, sys
importlib.import_module(sys.argv[2])
print(",".join(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1].split(",")))))
"""

LIBRARY_PACKAGES = [
    "conveyor.artifacts",
    "conveyor.data",
    "conveyor.data.profiling",
    "conveyor.data.sources",
    "conveyor.data.validation",
    "conveyor.deploy",
    "conveyor.deploy.k8s",
    "conveyor.monitor",
    "conveyor.pipeline",
    "conveyor.registry",
    "conveyor.serving",
    "conveyor.spec",
    "conveyor.store",
    "conveyor.train.algorithms",
    "conveyor.train.evaluation",
    "conveyor.train.onnx",
    "conveyor.train.report",
    "conveyor.train.steps",
    "conveyor.train.tuning",
]


def loaded(probe: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", probe, ",".join(HEAVY), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_help_imports_no_heavy_library() -> None:
    assert loaded(CLI_PROBE) == ""


@pytest.mark.parametrize("package", LIBRARY_PACKAGES)
def test_importing_a_package_loads_no_heavy_library(package: str) -> None:
    assert loaded(MODULE_PROBE, package) == ""


def test_help_runs_well_under_a_second() -> None:
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "conveyor", "--help"], capture_output=True, check=True
        )
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.8, timings
