"""`conveyor deploy` and `conveyor rollback`: start a rollout, or undo the latest change."""

from __future__ import annotations

import enum
from typing import Annotated

import typer
from rich.markup import escape

from conveyor.cli._console import console
from conveyor.cli.rollout import Reason, current_user, open_project, registry_of

app = typer.Typer()


class Policy(enum.StrEnum):
    """The policies `conveyor deploy --policy` accepts."""

    canary = "canary"
    blue_green = "blue_green"
    ab = "ab"
    shadow = "shadow"
    direct = "direct"


@app.command()
def deploy(
    ctx: typer.Context,
    reason: Reason,
    version: Annotated[
        str | None,
        typer.Argument(
            help="A version number or alias (default: the challenger alias).", show_default=False
        ),
    ] = None,
    policy: Annotated[
        Policy | None,
        typer.Option(
            "--policy",
            help="Rollout policy instead of the spec's rollout.policy; 'direct' switches all "
            "traffic at once.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Roll a model version out against the champion, with the spec's policy and guardrails."""
    from conveyor.deploy import rollout_report, start_deployment

    with open_project(ctx) as (session, name):
        rollout = session.require_spec().spec.rollout
        record = start_deployment(
            session.store,
            registry_of(session, name),
            name,
            rollout,
            version=version,
            policy=None if policy is None else policy.value,
            actor=current_user(),
            reason=reason,
        )
        report = rollout_report(session.store, name, fallback=rollout, events=1)
    weights = ", ".join(f"v{v} {w:g}%" for v, w in sorted(record.weights.items()))
    if str(record.policy) == "direct":
        console.print(
            f"[green]✓[/] version [bold]{record.challenger_version or record.champion_version}"
            f"[/] of {escape(name)} is champion and serves all traffic (deployment "
            f"{record.id[:8]}, direct)"
        )
        return
    console.print(
        f"[green]✓[/] deployment [bold]{record.id[:8]}[/]: {record.policy} of "
        f"v{record.challenger_version} against v{record.champion_version}; weights {weights}"
    )
    if report is not None and report.events:
        plan = report.events[-1].metrics.get("plan")
        if plan:
            console.print(f"  {escape(str(plan))}")
    console.print("  watch it with [bold]conveyor rollout status --watch[/]")
    if report is not None and report.controller is None:
        console.print(
            "  [yellow]no controller is running[/]: start [bold]conveyor controller[/] (or "
            "[bold]conveyor serve --controller[/]) to move it on and guard it"
        )


@app.command()
def rollback(ctx: typer.Context, reason: Reason) -> None:
    """Abort the rollout in progress; without one, make the previous champion serve again."""
    from conveyor.deploy import abort_rollout, rollback_deployment

    with open_project(ctx) as (session, name):
        # Aborting needs only the store: it must work while MLflow is away.
        active = session.store.active_deployment(name)
        if active is not None:
            record = abort_rollout(session.store, name, actor=current_user(), reason=reason)
        else:
            registry = registry_of(session, name)
            record = rollback_deployment(
                session.store, registry, name, actor=current_user(), reason=reason
            )
    if active is not None:
        console.print(
            f"[green]✓[/] rollout [bold]{record.id[:8]}[/] aborted: v{record.champion_version} "
            f"serves all traffic again; v{record.challenger_version} is not champion"
        )
        return
    console.print(
        f"[green]✓[/] version [bold]{record.challenger_version}[/] of {escape(name)} is champion "
        f"again and serves all traffic (rolled back from v{record.champion_version}; "
        f"deployment {record.id[:8]})"
    )
