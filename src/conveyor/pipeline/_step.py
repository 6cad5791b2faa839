"""What a step is, and what it sees while it runs."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import PipelineError

if TYPE_CHECKING:
    from conveyor.artifacts import ArtifactStore
    from conveyor.store import MetadataStore

__all__ = ["Step", "StepContext", "StepFunction", "load_callable"]

#: A step function gets its context and may return outputs (bytes, text or a file path)
#: instead of writing them to ``ctx.output_path(name)``.
StepFunction = Callable[["StepContext"], Mapping[str, bytes | str | Path] | None]


@dataclass(frozen=True)
class Step:
    """A named unit of work with declared inputs and outputs.

    Attributes:
        name: Unique within the pipeline.
        fn: The function to call with a :class:`StepContext`.
        inputs: Local input name -> ``"step.output"`` of an upstream step.
        files: Paths or globs, relative to the project root, whose contents are inputs.
        outputs: Names of the files the step produces.
        config: The step's slice of the spec; part of the cache key.
        retries: How many times a failing step is retried (with exponential backoff).
        retry_backoff_s: The first retry's delay; each later one doubles it.
        cache: Whether an unchanged step may be skipped.
        version: Bumped by hand to invalidate the cache when code outside the step changed.
    """

    name: str
    fn: StepFunction
    inputs: Mapping[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    retry_backoff_s: float = 1.0
    cache: bool = True
    version: str | None = None

    def upstream(self) -> set[str]:
        return {ref.partition(".")[0] for ref in self.inputs.values()}


@dataclass
class StepContext:
    """Everything a running step may use. Steps write only to :meth:`output_path` files.

    ``store`` and ``artifacts`` are there for steps that record more than their outputs (the
    built-in ``ingest`` step records dataset versions); most steps never need them.
    """

    name: str
    config: Mapping[str, Any]
    inputs: Mapping[str, Path]
    files: tuple[Path, ...]
    project_root: Path
    workdir: Path
    attempt: int
    outputs: tuple[str, ...]
    run_id: str
    store: MetadataStore = field(repr=False)
    artifacts: ArtifactStore = field(repr=False)
    _on_progress: Callable[[float, float | None, str | None], None] = field(repr=False)

    def output_path(self, name: str) -> Path:
        """The file the step must write output ``name`` to.

        Raises:
            PipelineError: ``name`` is not one of the step's declared outputs.
        """
        if name not in self.outputs:
            declared = ", ".join(self.outputs) or "none"
            raise PipelineError(
                f"step {self.name!r} wrote output {name!r}, which it does not declare "
                f"(declared: {declared}); add it to the step's `outputs:`"
            )
        return self.workdir / "outputs" / name

    def progress(
        self, completed: float, total: float | None = None, description: str | None = None
    ) -> None:
        """Report progress; shown as the step's progress bar."""
        self._on_progress(completed, total, description)


def load_callable(reference: str, project_root: Path) -> StepFunction:
    """Resolve ``"module:function"`` or ``"path/to/file.py:function"`` relative to the project.

    Raises:
        PipelineError: the module, file or function cannot be found, naming what was tried.
    """
    target, sep, attr = reference.rpartition(":")
    if not sep or not target or not attr:
        raise PipelineError(
            f"step function {reference!r} must look like 'module:function' or 'file.py:function'"
        )
    try:
        local = _project_file(project_root, target)
        module = _load_file(local, project_root) if local else importlib.import_module(target)
    except ImportError as err:
        raise PipelineError(
            f"cannot import {target!r} for step function {reference!r}: {err}; the module must "
            f"be a file under {project_root} or an installed module"
        ) from err
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise PipelineError(f"{target!r} has no function {attr!r} (from step {reference!r})")
    return fn  # type: ignore[no-any-return]


def _project_file(project_root: Path, target: str) -> Path | None:
    """The project's own file for ``target`` (``steps`` or ``pkg.steps`` or ``steps.py``)."""
    if target.endswith(".py"):
        return project_root / target
    base = project_root.joinpath(*target.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _load_file(path: Path, project_root: Path) -> Any:
    """Execute a project file as a fresh module.

    Each load gets its own module name (keyed by project and file), so two projects in one
    process never share a cached ``steps`` module, and an edited file is read anew.
    """
    if not path.is_file():
        raise ImportError(f"no such file {path}")
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"conveyor_project_{key}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
