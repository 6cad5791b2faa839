"""A step's code version changes exactly when code it depends on changes."""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from conveyor.pipeline._hashing import code_version

BASE = """
LIMIT = 10

def helper(x):
    return x * 2

class Scaler:
    def scale(self, x):
        return helper(x) + LIMIT

def step_a(ctx):
    return [helper(v) for v in range(3)]

def step_b(ctx):
    return Scaler().scale(1)

def unrelated(ctx):
    return 1
"""

_counter = itertools.count()


def load(tmp_path: Path, source: str) -> ModuleType:
    """Load ``source`` as the project's steps module, as the runner does (same module name)."""
    path = tmp_path / f"v{next(_counter)}" / "steps.py"
    path.parent.mkdir()
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("steps_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["steps_under_test"] = module
    spec.loader.exec_module(module)
    return module


def versions(tmp_path: Path, source: str) -> dict[str, str]:
    module = load(tmp_path, source)
    return {name: code_version(getattr(module, name)) for name in ("step_a", "step_b")}


def test_editing_another_step_in_the_same_file_keeps_the_version(tmp_path: Path) -> None:
    before = versions(tmp_path, BASE)
    after = versions(tmp_path, BASE.replace("return 1", "return 2"))
    assert before == after


def test_helper_used_inside_a_comprehension_invalidates(tmp_path: Path) -> None:
    before = versions(tmp_path, BASE)
    after = versions(tmp_path, BASE.replace("return x * 2", "return x * 3"))
    assert before["step_a"] != after["step_a"]
    assert before["step_b"] != after["step_b"]  # through Scaler.scale -> helper


def test_constant_and_class_method_changes_invalidate(tmp_path: Path) -> None:
    before = versions(tmp_path, BASE)
    after = versions(tmp_path, BASE.replace("LIMIT = 10", "LIMIT = 11"))
    assert before["step_a"] == after["step_a"]
    assert before["step_b"] != after["step_b"]


def test_explicit_version_bump(tmp_path: Path) -> None:
    module = load(tmp_path, BASE)
    assert code_version(module.step_a) != code_version(module.step_a, "2")


def test_set_constants_hash_the_same_in_every_process(tmp_path: Path) -> None:
    # Set iteration order follows string hashes, which each Python process randomises; the
    # version must not, or a cached step would re-run in the next process.
    (tmp_path / "setconst.py").write_text(
        "NAMES = frozenset({'alpha', 'beta', 'gamma', 'delta', 'epsilon'})\n"
        "PAIR = (frozenset({'x', 'y', 'z'}),)\n"
        "def step(ctx):\n    return NAMES, PAIR\n"
    )
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import setconst;"
        "from conveyor.pipeline._hashing import code_version;"
        "print(code_version(setconst.step))"
    )
    seen = {
        subprocess.run(
            [sys.executable, "-c", probe, str(tmp_path)],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert len(seen) == 1
