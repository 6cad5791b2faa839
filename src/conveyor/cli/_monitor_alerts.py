"""`conveyor monitor alerts`: the monitoring alerts recorded in the metadata store."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli._app import state
from conveyor.cli._console import console

if TYPE_CHECKING:
    from conveyor.store import AlertRecord

__all__ = ["AlertState", "alerts"]


class AlertState(StrEnum):
    """Which alerts to list."""

    firing = "firing"
    resolved = "resolved"


def alerts(
    ctx: typer.Context,
    alert_state: Annotated[
        AlertState | None,
        typer.Option("--state", help="Only alerts in this state (default: both)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many alerts.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the alerts as JSON.")] = False,
) -> None:
    """List the project's alerts (drift, quality drop, error rate, latency), latest first."""
    from conveyor.session import Session

    with Session.open(state(ctx).project) as session:
        project = session.require_spec().spec.name
        records = session.store.list_alerts(
            project, state=None if alert_state is None else alert_state.value, limit=limit
        )
    if as_json:
        console.print_json(json.dumps([_as_json(record) for record in records]))
        return
    if not records:
        which = f"{alert_state.value} " if alert_state is not None else ""
        console.print(f"No {which}alerts for {escape(project)}.")
        return
    console.print(render(records))


def render(records: list[AlertRecord]) -> Table:
    """One row per alert: state, event, what it is about, when, and its latest message."""
    table = Table("state", "event", "subject", "since", "last seen", "count", "message")
    for record in records:
        firing = record.state == "firing"
        text = str(record.payload.get("text", ""))
        table.add_row(
            "[bold red]firing[/]" if firing else "[green]resolved[/]",
            escape(record.event),
            escape(record.subject),
            _when(record.first_at),
            _when(record.last_at),
            str(record.count),
            escape(text.split(": ", 1)[-1] if text else "-"),
        )
    return table


def _as_json(record: AlertRecord) -> dict[str, Any]:
    def moment(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": record.id,
        "rule": record.rule,
        "event": record.event,
        "subject": record.subject,
        "state": record.state,
        "first_at": moment(record.first_at),
        "last_at": moment(record.last_at),
        "resolved_at": moment(record.resolved_at),
        "notified_at": moment(record.notified_at),
        "count": record.count,
        "payload": record.payload,
    }


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
