"""`conveyor monitor triggers`: the retraining runs the controller started, and their outcome."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli._app import state
from conveyor.cli._console import STATUS_STYLE, console

if TYPE_CHECKING:
    from conveyor.store import RetrainTriggerRecord

__all__ = ["render", "triggers"]


def triggers(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many triggers.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the triggers as JSON.")] = False,
) -> None:
    """List the retraining triggers (schedule, drift, quality drop), latest first.

    Each names why it fired, the pipeline run it started (see `conveyor runs show RUN`), the
    model version that run registered and the rollout started for it.
    """
    from conveyor.session import Session

    with Session.open(state(ctx).project) as session:
        project = session.require_spec().spec.name
        records = session.store.list_retrain_triggers(project, limit=limit)
    if as_json:
        console.print_json(json.dumps([_as_json(record) for record in records]))
        return
    if not records:
        console.print(
            f"No retraining triggers for {escape(project)}: `monitor.retrain` in the spec and "
            "a running `conveyor controller` start them."
        )
        return
    console.print(render(records))


def render(records: list[RetrainTriggerRecord]) -> Table:
    """One row per trigger: when, kind, status, why, its run, version, rollout and outcome."""
    table = Table("when", "kind", "status", "reason", "run", "version", "rollout", "message")
    for record in records:
        style = STATUS_STYLE.get(record.status, "")
        table.add_row(
            record.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            escape(record.kind),
            f"[{style}]{record.status}[/]" if style else record.status,
            escape(record.reason),
            record.run_id[:8] if record.run_id else "-",
            "-" if record.model_version is None else f"v{record.model_version}",
            record.deployment_id[:8] if record.deployment_id else "-",
            escape(record.message or "-"),
        )
    return table


def _as_json(record: RetrainTriggerRecord) -> dict[str, Any]:
    def moment(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": record.id,
        "kind": record.kind,
        "reason": record.reason,
        "details": record.details,
        "created_at": moment(record.created_at),
        "status": record.status,
        "run_id": record.run_id,
        "model_version": record.model_version,
        "deployment_id": record.deployment_id,
        "finished_at": moment(record.finished_at),
        "message": record.message,
    }
