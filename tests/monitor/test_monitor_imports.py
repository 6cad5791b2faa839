"""`import conveyor.monitor` loads no heavy library; numpy, scipy, DuckDB come with use."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["numpy", "scipy", "duckdb", "pyarrow", "pandas", "matplotlib", "sklearn", "mlflow"]

PROBE = """
import sys
import conveyor.monitor
print(",".join(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1].split(",")))))
"""


def test_importing_the_monitor_package_loads_no_heavy_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(HEAVY)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
