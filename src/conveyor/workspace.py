"""Where a project lives and which backends it uses.

A project is a folder holding ``conveyor.yaml``; its local state lives in ``.conveyor/`` beside
it (like ``.git``). Commands find the project by walking up from the current folder, or take
``--project DIR``. Backend URLs come from, in order of precedence: environment variables
(``CONVEYOR_DB_URL``, ``CONVEYOR_ARTIFACTS_URL``, ``MLFLOW_TRACKING_URI``, ``CONVEYOR_REDIS_URL``),
the spec's ``settings:`` section, then embedded defaults inside ``.conveyor/``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from conveyor.errors import ProjectError, SettingsError

if TYPE_CHECKING:
    from conveyor.spec import SettingsSpec

__all__ = ["SPEC_FILENAME", "STATE_DIRNAME", "EnvSettings", "Project", "Settings"]

SPEC_FILENAME = "conveyor.yaml"  # conveyor.spec re-exports it; defined here to stay light
STATE_DIRNAME = ".conveyor"


class EnvSettings(BaseSettings):
    """Backend URLs read from the environment; each one left unset falls through to the spec."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="ignore", frozen=True)

    db_url: str | None = None
    artifacts_url: str | None = None
    redis_url: str | None = None
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "CONVEYOR_MLFLOW_TRACKING_URI"),
    )


@dataclass(frozen=True)
class Settings:
    """The backend URLs a project uses, after environment, spec and defaults are merged."""

    db_url: str
    artifacts_url: str
    mlflow_tracking_uri: str
    redis_url: str | None


@dataclass(frozen=True)
class Project:
    """A project folder: ``conveyor.yaml`` plus the ``.conveyor/`` state folder."""

    root: Path

    @property
    def spec_path(self) -> Path:
        return self.root / SPEC_FILENAME

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIRNAME

    @classmethod
    def find(cls, start: Path | None = None) -> Project:
        """Find the project holding ``start`` (default: the current folder) by walking up.

        Raises:
            ProjectError: no folder from ``start`` up to the filesystem root holds a spec.
        """
        origin = (start or Path.cwd()).resolve()
        for folder in (origin, *origin.parents):
            if (folder / SPEC_FILENAME).is_file():
                return cls(folder)
        raise ProjectError(
            f"no {SPEC_FILENAME} found in {origin} or any parent folder; "
            "run `conveyor init` to create a project, or pass --project DIR"
        )

    @classmethod
    def at(cls, root: Path) -> Project:
        """The project rooted exactly at ``root`` (for ``--project DIR``)."""
        root = root.expanduser().resolve()
        if not (root / SPEC_FILENAME).is_file():
            hint = "" if root.is_dir() else " (that folder does not exist)"
            raise ProjectError(
                f"no {SPEC_FILENAME} in {root}{hint}; run `conveyor init {root}` to create one"
            )
        return cls(root)

    def ensure_state_dir(self) -> Path:
        """Create ``.conveyor/`` if needed and prove it is writable.

        Raises:
            ProjectError: the folder cannot be created or written, with the path and the fix.
        """
        state = self.state_dir
        if state.exists() and not state.is_dir():
            raise ProjectError(
                f"{state} exists but is not a folder; move that file away so Conveyor can keep "
                "its local state there"
            )
        try:
            state.mkdir(parents=True, exist_ok=True)
            # os.access lies for root and on some network mounts; a real write is the only proof.
            with tempfile.NamedTemporaryFile(dir=state, prefix=".write-check-"):
                pass
        except OSError as err:
            raise ProjectError(
                f"cannot write Conveyor's local state in {state}: {err.strerror or err}; "
                "make the folder writable (or point CONVEYOR_DB_URL and CONVEYOR_ARTIFACTS_URL "
                "elsewhere)"
            ) from err
        return state

    def settings(self, spec_settings: SettingsSpec | None = None) -> Settings:
        """Merge environment overrides, the spec's ``settings:`` and embedded defaults.

        Raises:
            SettingsError: an environment variable holds an invalid value.
        """
        try:
            env = EnvSettings()
        except ValidationError as err:
            raise SettingsError(f"invalid Conveyor environment setting: {err}") from err
        state = self.state_dir

        def pick(name: str, default: str) -> str:
            value = getattr(env, name) or (
                getattr(spec_settings, name, None) if spec_settings else None
            )
            return value or default

        artifacts = pick("artifacts_url", str(state / "artifacts"))
        if "://" not in artifacts and not os.path.isabs(artifacts):
            artifacts = str(self.root / artifacts)
        return Settings(
            db_url=pick("db_url", f"sqlite:///{state / 'conveyor.db'}"),
            artifacts_url=artifacts,
            mlflow_tracking_uri=pick("mlflow_tracking_uri", f"sqlite:///{state / 'mlflow.db'}"),
            redis_url=env.redis_url or (spec_settings.redis_url if spec_settings else None),
        )
