"""Renders a pipeline run live with rich: one line per step, its status, time and progress."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from conveyor.cli._console import STATUS_STYLE
from conveyor.pipeline import RunReporter
from conveyor.store import RunRecord, StepRunRecord


class RichReporter(RunReporter):
    """Shows each step's state; cached and reused steps say so instead of running."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(finished_text=" "),
            TextColumn("{task.fields[label]:<28}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def run_started(self, run: RunRecord, steps: Sequence[str], *, resumed: bool) -> None:
        verb = f"Resuming run (attempt {run.attempt})" if resumed else "Run"
        self.console.print(f"{verb} [bold]{run.id[:8]}[/] of [bold]{run.project}[/]")
        for name in steps:
            self.tasks[name] = self.progress.add_task(
                name, label=name, status="[dim]pending[/]", total=None, start=False
            )
        self.progress.start()

    def step_started(self, name: str, attempt: int) -> None:
        task = self.tasks[name]
        self.progress.start_task(task)
        note = f" (attempt {attempt})" if attempt > 1 else ""
        self.progress.update(task, status=f"[blue]running{note}[/]")

    def step_progress(
        self, name: str, completed: float, total: float | None, description: str | None
    ) -> None:
        task = self.tasks[name]
        self.progress.update(task, completed=completed, total=total)
        if description:
            self.progress.update(task, status=f"[blue]{description}[/]")

    def step_retrying(self, name: str, attempt: int, delay_s: float, error: str) -> None:
        self.progress.console.print(
            f"[yellow]step {name} failed (attempt {attempt}): {escape(error)}; "
            f"retrying in {delay_s:g}s"
        )

    def step_finished(self, record: StepRunRecord) -> None:
        task = self.tasks.get(record.name)
        if task is None:
            return
        style = STATUS_STYLE.get(record.status.value, "")
        label = record.status.value
        if record.status.value in ("cached", "reused"):
            label += " (unchanged, skipped)"
        self.progress.start_task(task)  # cached steps never started; stop their spinner
        total = self.progress.tasks[task].total or 1
        self.progress.update(task, status=f"[{style}]{label}[/]", total=total, completed=total)
        self.progress.stop_task(task)

    def run_finished(self, run: RunRecord) -> None:
        self.progress.stop()
