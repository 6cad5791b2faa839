"""Importing the validation package loads none of the heavy libraries it uses."""

from __future__ import annotations

import subprocess
import sys

HEAVY = {"pandas", "numpy", "pyarrow", "duckdb", "pandera"}

PROBE = """
import sys
import conveyor.data.validation
print(",".join(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1].split(",")))))
"""


def test_import_loads_no_heavy_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(sorted(HEAVY))],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == ""
