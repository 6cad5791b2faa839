"""`conveyor demo`: the closed loop on real data, in one command."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from conveyor.cli._console import console

if TYPE_CHECKING:
    from conveyor.demo._summary import DemoSummary

app = typer.Typer()


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Where to create the demo project (default: a new temp folder)."
        ),
    ] = None,
    fast: Annotated[
        bool,
        typer.Option("--fast", help="A short run: July to October, one flight in four (~2 min)."),
    ] = False,
) -> None:
    """Play the whole loop on the 2013 NYC flights, offline, in under ten minutes.

    Trains and registers a champion on January-June, serves it (2 workers) with the
    controller, replays July-December through the HTTP server as live traffic in time order
    with the labels fed back a day later, and lets the product do the rest: drift detection,
    retraining on the new data, the gate, a canary rollout with guardrails, promotion or
    rollback. Ends with a summary table and an HTML report.
    """
    from conveyor.cli._progress import RichReporter
    from conveyor.demo._closed_loop import FAST, FULL, ClosedLoopDemo
    from conveyor.demo._summary import collect_summary, render_summary_html
    from conveyor.session import Session

    plan = FAST if fast else FULL
    root = (directory or Path(tempfile.mkdtemp(prefix="conveyor-demo-"))).resolve()
    began = time.monotonic()

    def say(line: str) -> None:
        console.print(f"[dim]{datetime.now():%H:%M:%S}[/]  {escape(line)}", soft_wrap=True)

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} flights"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("replay", total=1, visible=False)

        def progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what, visible=True)

        loop = ClosedLoopDemo(
            root, plan, say=say, progress=progress, reporter=RichReporter(console)
        )
        loop.create()
        with Session.open(root) as session:
            console.rule("1. champion: ingest, validate, train, evaluate, gate, register")
            loop.train_champion(session)
            console.rule("2. serve, control, replay the later months as live traffic")
            loop.play(session)
    with Session.open(root) as session:
        quality = session.require_spec().spec.monitor.quality
        summary = collect_summary(
            session,
            seconds=time.monotonic() - began,
            rows_replayed=loop.replayed,
            request_errors=loop.errors,
            alerts_received=len(loop.alerts.alerts),
            quality_window=quality.window if quality is not None else plan.label_delay,
        )
    console.rule("3. what happened")
    _print(summary)
    report = render_summary_html(summary, root / "reports" / "demo.html")
    console.print(f"[green]✓[/] report: {report}")
    command = "conveyor" if shutil.which("conveyor") else f"{sys.executable} -m conveyor"
    for line in (
        "models list",
        "lineage champion",
        "monitor triggers",
        "monitor quality",
        "rollout status",
    ):
        console.print(f"  [bold]{command} --project {root} {line}[/]")


def _print(summary: DemoSummary) -> None:
    from conveyor.demo._summary import model_metric

    table = Table("", "", title="Closed loop", title_justify="left", show_header=False)
    table.add_row(
        "flights replayed", f"{summary.rows_replayed:,} ({summary.request_errors} failed)"
    )
    table.add_row(
        "data versions",
        "; ".join(f"{d.id[:12]} ({d.row_count:,} rows)" for d in summary.datasets),
    )
    table.add_row(
        "model versions",
        "; ".join(
            f"v{m.version} {'/'.join(sorted(m.aliases)) or '-'} (holdout roc_auc {model_metric(m)})"
            for m in summary.models
        ),
    )
    flagged = sum(run.flagged for run in summary.drift)
    shares = ", ".join(f"{run.score or 0:.2f}" for run in summary.drift[:24])
    table.add_row(
        "drift windows",
        f"{len(summary.drift)} judged, {flagged} drifted; drifted share per window: {shares}",
    )
    table.add_row(
        "retraining",
        "; ".join(
            f"{t.kind} → {t.status}"
            + (f" v{t.model_version}" if t.model_version else "")
            + (f" ({t.message})" if t.message else "")
            for t in summary.triggers
        )
        or "none",
    )
    if summary.quality is not None:
        table.add_row(
            f"live {summary.quality.metric}",
            "; ".join(
                f"v{p.model_version}: "
                + (
                    f"{p.value:.4f} [{p.ci_low:.4f}, {p.ci_high:.4f}]"
                    if p.value is not None and p.ci_low is not None and p.ci_high is not None
                    else "n/a"
                )
                + f" on {p.n_labelled:,} labelled"
                for p in summary.quality.versions
                if not p.shadow
            ),
        )
    for record, events in summary.deployments:
        table.add_row(
            f"rollout v{record.challenger_version or record.champion_version}",
            f"{record.policy}: {record.state}; "
            + " → ".join(f"{e.kind}" for e in events[-8:])
            + (f" ({escape(events[-1].reason)})" if events else ""),
        )
    table.add_row("alerts", f"{summary.alerts_received} received by the demo's webhook")
    table.add_row("time", f"{summary.seconds / 60:.1f} min")
    console.print(table)
