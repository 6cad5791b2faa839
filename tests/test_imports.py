"""`conveyor --help` and `import conveyor` stay fast: no heavy library is imported for them."""

from __future__ import annotations

import subprocess
import sys
import time

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
    "duckdb",
    "pyarrow",
    "sqlalchemy",
    "alembic",
]

PROBE = """
import sys
from conveyor.cli import app
from typer.testing import CliRunner
result = CliRunner().invoke(app, ["--help"])
assert result.exit_code == 0, result.output
import conveyor, conveyor.errors, conveyor.workspace
print(",".join(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1].split(",")))))
"""


def test_help_imports_no_heavy_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(HEAVY)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_help_runs_well_under_a_second() -> None:
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "conveyor", "--help"], capture_output=True, check=True
        )
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.8, timings
