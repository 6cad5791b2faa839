"""``features:`` — versioned feature views (DuckDB SQL) and the online store that serves them.

A feature view is joined to the dataset point-in-time correct on its entity columns and the
dataset's ``time_column``; its version is the hash of its definition (see
:meth:`LoadedSpec.section_hash`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from conveyor.spec._base import Duration, Identifier, SpecModel

__all__ = [
    "FeatureViewSpec",
    "FeaturesSpec",
    "OnlineStore",
    "RedisOnlineStore",
    "SqliteOnlineStore",
]


class FeatureViewSpec(SpecModel):
    """A set of features computed by one query and keyed by entity columns and event time."""

    query: str = Field(
        min_length=1,
        description="DuckDB SQL returning the entity columns, the timestamp column and features; "
        "sources and the dataset are visible as tables.",
    )
    entities: list[str] = Field(
        min_length=1, description="Join-key columns shared with the dataset (e.g. [origin])."
    )
    timestamp: str = Field(description="Column holding the time each feature value became known.")
    ttl: Duration | None = Field(
        None, description="How long a value stays valid (e.g. '1d'); default: forever."
    )
    description: str = Field("", description="What these features describe.")


class SqliteOnlineStore(SpecModel):
    """Online store in a local SQLite file (the default)."""

    type: Literal["sqlite"] = Field(description="Online store type: 'sqlite'.")
    path: str = Field(
        ".conveyor/online.sqlite", description="SQLite file, relative to the project."
    )


class RedisOnlineStore(SpecModel):
    """Online store in Redis, for several serving replicas."""

    type: Literal["redis"] = Field(description="Online store type: 'redis'.")
    url: str | None = Field(
        None, description="Redis URL; default: settings.redis_url (or its environment override)."
    )
    key_prefix: str = Field("conveyor", description="Prefix of every key Conveyor writes.")


OnlineStore = Annotated[SqliteOnlineStore | RedisOnlineStore, Field(discriminator="type")]
"""Where materialized features are kept for serving, selected by ``type``."""


class FeaturesSpec(SpecModel):
    """Feature views and their online store."""

    views: dict[Identifier, FeatureViewSpec] = Field(
        default_factory=dict, description="Feature views by name (the name is a SQL identifier)."
    )
    online_store: OnlineStore = Field(
        default_factory=lambda: SqliteOnlineStore(type="sqlite"),
        description="Where features are materialized for serving.",
    )
