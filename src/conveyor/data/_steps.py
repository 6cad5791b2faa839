"""The built-in ``ingest`` and ``validate`` pipeline steps, and how a spec declares them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.data._snapshot import take_snapshot
from conveyor.data._validated import validate_version, validation_failure

if TYPE_CHECKING:
    from conveyor.pipeline import Step, StepContext
    from conveyor.spec import LoadedSpec

__all__ = ["builtin_steps", "ingest_step", "validate_step"]


def builtin_steps(loaded: LoadedSpec, project_root: Path) -> list[Step]:
    """``ingest`` and ``validate`` for a spec with ``sources:`` (none without).

    Ingest is cached on the contents of local source files; a spec reading a database or an
    HTTP API ingests on every run, and an unchanged result keeps every later step cached,
    because the snapshot's bytes (and so its digest) are the same.
    """
    from conveyor.pipeline import Step
    from conveyor.spec import FileSource

    spec = loaded.spec
    if not spec.sources:
        return []
    local_files = [
        s.path for s in spec.sources.values() if isinstance(s, FileSource) and "://" not in s.path
    ]
    # A missing file is left to the source to report (it names the source and the path it
    # looked for); until then ingest cannot be cached on the file's contents anyway.
    present = [p for p in local_files if _matches(project_root, p)]
    only_files = len(present) == len(spec.sources)
    dataset = spec.dataset.model_dump(mode="json", by_alias=True) if spec.dataset else None
    ingest = Step(
        "ingest",
        ingest_step,
        files=tuple(present),
        outputs=("snapshot", "version"),
        config={
            "project": spec.name,
            "sources": {n: s.model_dump(mode="json") for n, s in spec.sources.items()},
            "dataset": dataset,
            "lineage": dict(loaded.raw.get("sources") or {}),
            "allow_schema_change": bool(spec.dataset and spec.dataset.on_schema_change == "allow"),
        },
        cache=only_files,
    )
    validate = Step(
        "validate",
        validate_step,
        inputs={"snapshot": "ingest.snapshot", "version": "ingest.version"},
        outputs=("dataset", "report"),
        config={
            "project": spec.name,
            "schema": spec.schema_.model_dump(mode="json", by_alias=True) if spec.schema_ else None,
            "time_column": spec.dataset.time_column if spec.dataset else None,
        },
    )
    return [ingest, validate]


def _matches(root: Path, pattern: str) -> bool:
    if Path(pattern).is_absolute():
        import glob

        return any(Path(p).is_file() for p in glob.glob(pattern))
    return any(p.is_file() for p in root.glob(pattern))


def ingest_step(ctx: StepContext) -> dict[str, Path | str]:
    """Snapshot the sources: outputs the Parquet file and the version's id and name (JSON)."""
    from pydantic import TypeAdapter

    from conveyor.spec import DatasetSpec, Source

    config = ctx.config
    adapter: TypeAdapter[Any] = TypeAdapter(Source)
    snapshot = take_snapshot(
        config["project"],
        {name: adapter.validate_python(raw) for name, raw in config["sources"].items()},
        DatasetSpec.model_validate(config["dataset"]) if config["dataset"] else None,
        raw_sources=config["lineage"],
        project_root=ctx.project_root,
        workdir=ctx.workdir,
        store=ctx.store,
        artifacts=ctx.artifacts,
        allow_schema_change=config["allow_schema_change"],
        run_id=ctx.run_id,
    )
    ctx.progress(1, 1, f"{snapshot.version.row_count:,} rows, version {snapshot.version.id}")
    version = {"id": snapshot.version.id, "name": snapshot.version.name}
    return {"snapshot": snapshot.path, "version": json.dumps(version)}


def validate_step(ctx: StepContext) -> dict[str, Path | str]:
    """Check the snapshot against ``schema:``; clean rows are the output ``dataset``."""
    from conveyor.spec import SchemaSpec

    config = ctx.config
    project = config["project"]
    raw = ctx.store.get_dataset_version(json.loads(ctx.inputs["version"].read_text())["id"])
    validated = validate_version(
        project,
        raw,
        ctx.inputs["snapshot"],
        SchemaSpec.model_validate(config["schema"]) if config["schema"] else None,
        time_column=config["time_column"],
        workdir=ctx.workdir,
        store=ctx.store,
        artifacts=ctx.artifacts,
        run_id=ctx.run_id,
        progress=lambda done, total: ctx.progress(done, total, f"checked {done:,} rows"),
    )
    report = ctx.artifacts.get_file(
        validated.html_digest, ctx.project_root / "reports" / f"validation-{raw.id}.html"
    )
    if validated.version is None:
        raise validation_failure(validated, report)
    result = validated.result
    ctx.progress(1, 1, f"{result.clean_rows:,} clean, {result.quarantined_rows:,} quarantined")
    # The recorded version's bytes (the same rows as clean_path, perhaps stored earlier in
    # another order) keep every later step's cache valid.
    data = ctx.artifacts.get_file(validated.version.sha256, ctx.workdir / "dataset.parquet")
    return {"dataset": data, "report": json.dumps(validated.report, default=str)}
