"""The public names of each package are pinned: removing or renaming one is a breaking change."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "conveyor.pipeline": {
        "Pipeline",
        "RunReporter",
        "RunResult",
        "Runner",
        "Step",
        "StepContext",
        "StepFunction",
        "is_alive",
        "load_callable",
        "pipeline_from_spec",
        "reap_stale_runs",
    },
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_exported_members(module: str) -> None:
    imported = importlib.import_module(module)
    assert set(imported.__all__) == EXPECTED[module]
    for name in imported.__all__:
        assert hasattr(imported, name), name
