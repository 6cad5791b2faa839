"""An open project: its spec, settings and backends, opened lazily and closed together."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.workspace import Project, Settings

if TYPE_CHECKING:
    from conveyor.artifacts import ArtifactStore
    from conveyor.spec import LoadedSpec
    from conveyor.store import MetadataStore

__all__ = ["Session"]


class Session:
    """What every command needs: the project, its spec, its settings and its stores.

    The stores are opened on first use, so commands that only read the spec never touch a
    database. Close the session (or use it as a context manager) to release connections.
    """

    def __init__(self, project: Project, loaded: LoadedSpec | None) -> None:
        self.project = project
        self.loaded = loaded

    @classmethod
    def open(cls, project_dir: Path | None = None, *, need_spec: bool = True) -> Session:
        """Find the project (``project_dir`` or by walking up) and load its spec.

        Args:
            project_dir: The project root given with ``--project``; else found from the cwd.
            need_spec: When false, an invalid spec does not stop the session (for commands
                that only read the stores, such as ``conveyor runs``).

        Raises:
            ProjectError: no project found.
            SpecError: the spec is invalid and ``need_spec`` is true.
        """
        from conveyor.errors import SpecError
        from conveyor.spec import load_spec

        project = Project.at(project_dir) if project_dir else Project.find()
        try:
            loaded = load_spec(project.spec_path)
        except SpecError:
            if need_spec:
                raise
            loaded = None
        return cls(project, loaded)

    @property
    def name(self) -> str | None:
        """The project's name from its spec (None when the spec could not be loaded)."""
        return self.loaded.spec.name if self.loaded else None

    def require_spec(self) -> LoadedSpec:
        """The loaded spec, for commands that cannot work without one.

        Raises:
            SpecError: the session was opened with ``need_spec=False`` and the spec is invalid.
        """
        if self.loaded is None:
            from conveyor.spec import load_spec

            return load_spec(self.project.spec_path)  # raises the spec's own, precise error
        return self.loaded

    @cached_property
    def settings(self) -> Settings:
        return self.project.settings(self.loaded.spec.settings if self.loaded else None)

    @cached_property
    def store(self) -> MetadataStore:
        from conveyor.store import MetadataStore

        if self.settings.db_url.startswith("sqlite"):
            self.project.ensure_state_dir()
        return MetadataStore(self.settings.db_url)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        from conveyor.artifacts import ArtifactStore

        if "://" not in self.settings.artifacts_url:
            self.project.ensure_state_dir()
        return ArtifactStore(self.settings.artifacts_url)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
