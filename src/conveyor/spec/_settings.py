"""``settings:`` — where a project keeps its state (database, artifacts, MLflow, Redis).

Only the spec's values are modelled here; environment variables override them elsewhere
(``conveyor.workspace``), so a team can share one spec and point it at its own servers.
"""

from __future__ import annotations

from pydantic import Field

from conveyor.spec._base import SpecModel

__all__ = ["SettingsSpec"]


class SettingsSpec(SpecModel):
    """Connection settings; every one is optional and defaults to a local embedded backend."""

    db_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the metadata store, e.g. 'postgresql+psycopg://host/db'. "
        "Default: a SQLite file in the project's .conveyor/ folder.",
    )
    artifacts_url: str | None = Field(
        None,
        description="fsspec URL of the artifact store, e.g. 's3://bucket/conveyor'. "
        "Default: the project's .conveyor/artifacts/ folder.",
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI, e.g. 'http://mlflow:5000'. "
        "Default: a local MLflow store in the project's .conveyor/ folder.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis URL for the online feature store, e.g. 'redis://localhost:6379/0'. "
        "Only needed when features.online_store.type is 'redis'.",
    )
