"""A raw snapshot checked against ``schema:``: clean rows become the validated version.

The quarantine file (bad rows, one reason each) and the reports (JSON and HTML) are stored as
artifacts and named in the validated version's record. A snapshot whose checks fail is not
recorded as validated; its reports are stored all the same, so the failure can be read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.data._snapshot import (
    VALIDATED,
    content_identity,
    dataset_name,
    existing_version,
    version_id,
)
from conveyor.errors import DataValidationError

if TYPE_CHECKING:
    from conveyor.artifacts import ArtifactStore
    from conveyor.data.validation import ValidationResult
    from conveyor.spec import SchemaSpec
    from conveyor.store import DatasetVersionRecord, MetadataStore

__all__ = ["Validated", "validate_version", "validation_failure"]


@dataclass(frozen=True)
class Validated:
    """The outcome of validating a raw snapshot."""

    result: ValidationResult
    report: dict[str, Any]
    artifacts: dict[str, str]
    version: DatasetVersionRecord | None  # None when the checks failed

    @property
    def html_digest(self) -> str:
        return self.artifacts["report_html"]


def validate_version(
    project: str,
    raw: DatasetVersionRecord,
    raw_path: Path,
    schema: SchemaSpec | None,
    *,
    time_column: str | None,
    workdir: Path,
    store: MetadataStore,
    artifacts: ArtifactStore,
    run_id: str | None = None,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Validated:
    """Validate ``raw`` (its Parquet at ``raw_path``) and record the validated version.

    Without a ``schema:`` every row passes (nothing is checked), and the report says so.
    """
    from conveyor.data.validation import render_report_html, validate_snapshot
    from conveyor.spec import SchemaSpec

    result = validate_snapshot(
        raw_path,
        schema or SchemaSpec(),
        workdir=workdir,
        time_column=time_column,
        now=now,
        progress=progress,
    )
    report = {"dataset": raw.id, "project": project, **result.to_json()}
    stored = {
        "data": artifacts.put_file(result.clean_path).digest,
        "report_json": artifacts.put_bytes(
            json.dumps(report, indent=2, default=str).encode()
        ).digest,
        "report_html": artifacts.put_bytes(
            render_report_html(result, title=f"{project}: validation of {raw.id}").encode()
        ).digest,
    }
    if result.quarantine_path is not None:
        stored["quarantine"] = artifacts.put_file(result.quarantine_path).digest
    if not result.passed:
        return Validated(result, report, stored, None)
    name = dataset_name(project, VALIDATED)
    _, _, fingerprint = content_identity(result.clean_path)
    identity = version_id(name, fingerprint)
    existing = existing_version(store, identity)
    if existing is not None:
        return Validated(result, report, existing.artifacts, existing)
    version = store.add_dataset_version(
        id=identity,
        name=name,
        sha256=stored["data"],
        row_count=result.clean_rows,
        schema=raw.schema,
        source={
            "validated_from": raw.id,
            "schema": schema.model_dump(mode="json", by_alias=True) if schema else None,
        },
        parents=[raw.id],
        run_id=run_id,
        artifacts=stored,
        stats={
            "rows": result.rows,
            "quarantined_rows": result.quarantined_rows,
            "quarantine_fraction": result.quarantine_fraction,
        },
    )
    return Validated(result, report, stored, version)


def validation_failure(validated: Validated, report_path: Path | None) -> DataValidationError:
    """The error that stops a pipeline whose snapshot failed validation."""
    where = f"; report: {report_path}" if report_path else ""
    return DataValidationError(
        f"the data broke the schema: {validated.result.summary()}{where}. Fix the data, or "
        "relax `schema:` (checks, max_quarantine_fraction) if the rule is wrong, then "
        "`conveyor run --resume`"
    )
