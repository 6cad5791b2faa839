"""How `conveyor rollout status` draws a rollout: header, versions, guardrails, history."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Final

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from conveyor.deploy import GuardrailCheck, RolloutReport, VersionRow

__all__ = ["render_report"]

STATE_STYLE: Final = {
    "pending": "dim",
    "rolling": "blue",
    "paused": "yellow",
    "promoted": "green",
    "rolled_back": "bold red",
    "failed": "bold red",
}
_ACTION_STYLE: Final = {"advance": "green", "promote": "green", "rollback": "bold red"}


def render_report(report: RolloutReport, now: datetime) -> RenderableType:
    """The whole status view of one deployment."""
    record = report.deployment
    state = str(record.state)
    outcomes = str(record.policy) == "ab" or any(row.outcomes for row in report.rows)
    parts: list[RenderableType] = [_header(report, now), _versions(report.rows, outcomes)]
    if report.checks:
        parts.append(_guardrails(report.checks))
    if report.next is not None:
        style = _ACTION_STYLE.get(report.next.action, "cyan")
        parts.append(
            Text.from_markup(
                f"[bold]next[/]  [{style}]{report.next.action}[/]: {escape(report.next.reason)}"
            )
        )
    if record.state.active:
        parts.append(_controller(report.controller))
    elif state == "rolled_back":
        parts.append(Text(f"traffic is back on v{record.champion_version}"))
    if report.events:
        parts.append(_events(report))
    return Group(*parts)


def _header(report: RolloutReport, now: datetime) -> Text:
    record = report.deployment
    state = str(record.state)
    if record.challenger_version is None:
        versions = f"v{record.champion_version}"
    else:
        versions = f"v{record.challenger_version} against v{record.champion_version}"
    step = f"step {min(record.step + 1, report.steps)}/{report.steps}"
    started = record.step_started_at or record.created_at
    lines = [
        f"deployment [bold]{record.id[:8]}[/]  {escape(str(record.policy))} of {versions}  "
        f"[{STATE_STYLE.get(state, '')}]{state}[/]  {step}",
        f"  weights   {_weights(record.weights)}"
        + (
            f"  (+ v{record.shadow_version} mirrored {record.shadow_rate:.0%})"
            if record.shadow_version is not None
            else ""
        ),
        f"  step since {_when(started)} ({_age(now, started)} ago); last change by "
        f"{escape(record.actor)}: {escape(record.reason) or '-'}",
    ]
    return Text.from_markup("\n".join(lines))


def _versions(rows: tuple[VersionRow, ...], outcomes: bool) -> Table:
    columns = ("version", "role", "weight", "requests", "errors", "error rate", "p95", "p99")
    table = Table(*columns, "agreement", title="this step", title_justify="left")
    if outcomes:
        table.add_column("outcomes")
    for row in rows:
        agreement = "-"
        if row.agreement is not None:
            agreement = f"{row.agreement:.1%} of {row.compared:,}"
        extra = []
        if outcomes:
            mean = "" if row.outcome_mean is None else f", mean {row.outcome_mean:.3g}"
            extra.append(f"{row.outcomes:,}{mean}")
        table.add_row(
            f"v{row.version}",
            row.role,
            "-" if row.role == "shadow" else f"{row.weight:g}%",
            f"{row.requests:,}",
            f"{row.errors:,}",
            _percent(row.error_rate),
            _ms(row.p95_ms),
            _ms(row.p99_ms),
            agreement,
            *extra,
        )
    return table


def _guardrails(checks: tuple[GuardrailCheck, ...]) -> Table:
    table = Table(
        "guardrail", "value", "limit", "margin", "status", title="guardrails", title_justify="left"
    )
    for check in checks:
        if check.breached:
            status = "[bold red]breached[/]"
        elif check.judged:
            status = "[green]ok[/]"
        else:
            status = "[dim]not judged yet[/]"
        margin = "-" if check.value is None else _number(check.limit - check.value, check.name)
        table.add_row(
            check.name,
            "-" if check.value is None else _number(check.value, check.name),
            _number(check.limit, check.name),
            margin,
            status,
        )
    return table


def _controller(holder: str | None) -> Text:
    if holder is None:
        return Text.from_markup(
            "[yellow]no controller is running[/]: nothing moves this rollout on; start "
            "[bold]conveyor controller[/] (or [bold]conveyor serve --controller[/])"
        )
    return Text.from_markup(f"controller  {escape(holder)}")


def _events(report: RolloutReport) -> Table:
    table = Table(
        "at",
        "event",
        "by",
        "state",
        "weights",
        "reason",
        title="latest events",
        title_justify="left",
    )
    for item in report.events:
        state = str(item.to_state)
        table.add_row(
            _when(item.at),
            escape(item.kind),
            escape(item.actor),
            f"[{STATE_STYLE.get(state, '')}]{state}[/]",
            _weights(item.weights),
            escape(item.reason),
        )
    return table


def _weights(weights: Mapping[int, float]) -> str:
    return ", ".join(f"v{version} {weight:g}%" for version, weight in sorted(weights.items()))


def _number(value: float, name: str) -> str:
    if name == "error_rate":
        return f"{value * 100:.3g}%"
    if name.endswith("_ms"):
        return f"{value:,.3g} ms"
    return f"{value:.3g}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.3g}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _age(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
