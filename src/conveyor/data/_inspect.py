"""Looking at the sources without taking a snapshot: profiles for `conveyor data profile`."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.data._snapshot import dataset_query, open_sources
from conveyor.errors import SourceError

if TYPE_CHECKING:
    from conveyor.data.profiling import TableProfile
    from conveyor.spec import DatasetSpec, Source

__all__ = ["profile_sources"]


def profile_sources(
    sources: Mapping[str, Source],
    dataset: DatasetSpec | None,
    source: str | None,
    *,
    project_root: Path,
    workdir: Path,
) -> TableProfile:
    """Profile one source by name, or (``source=None``) the dataset the sources build.

    Raises:
        SourceError: no such source (with the nearest name), or it cannot be read.
    """
    from conveyor.data.profiling import profile_relation

    if source is not None and source not in sources:
        near = difflib.get_close_matches(source, sources, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else f" (sources: {', '.join(sources)})"
        raise SourceError(f"no source named {source!r} in the spec{hint}")
    con, built = open_sources(sources, project_root=project_root, workdir=workdir)
    try:
        relation = source
        if relation is None:
            relation = "__conveyor_dataset"
            con.execute(f"CREATE VIEW {relation} AS {dataset_query(dataset, list(built))}")
        return profile_relation(con, relation)
    finally:
        con.close()
