"""Importing the report package loads no plotting or numeric library."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import conveyor.train.report
heavy = {"matplotlib", "numpy", "pandas", "sklearn", "lightgbm", "xgboost", "scipy"}
print(",".join(sorted({name.split(".")[0] for name in sys.modules} & heavy)))
"""


def test_import_loads_no_heavy_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
