"""`conveyor controller`: the loop that moves rollouts on, promotes and rolls back."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from conveyor.cli._console import console
from conveyor.cli.rollout import open_project

app = typer.Typer()


@app.command()
def controller(
    ctx: typer.Context,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between two looks.")
    ] = 1.0,
    once: Annotated[
        bool, typer.Option("--once", help="Look once, act if needed, and exit.")
    ] = False,
) -> None:
    """Guard and advance the project's rollouts until stopped (Ctrl-C or SIGTERM).

    With `monitor.retrain` in the spec it also starts retraining runs (on its schedule, or on
    drift or a quality drop) and rolls their challengers out. Several controllers may run:
    only the one holding the project's lease acts.
    """
    from conveyor.deploy import Controller

    def report(line: str) -> None:
        console.print(f"{datetime.now():%H:%M:%S}  {escape(line)}", soft_wrap=True)

    with open_project(ctx) as (session, name):
        loaded = session.require_spec()
        loop = Controller.from_spec(
            session.store,
            loaded.spec,
            tracking_uri=session.settings.mlflow_tracking_uri,
            cache_dir=session.project.ensure_state_dir() / "models",
            project_root=session.project.root,
            artifacts_url=session.settings.artifacts_url,
            interval_s=interval,
            lease_ttl_s=max(15.0, 3 * interval),
            report=report,
        )
        if once:
            try:
                result = loop.tick()
            finally:
                loop.release()
            console.print(escape(result.message), soft_wrap=True)
            return
        console.print(
            f"controller of [bold]{escape(name)}[/] as {escape(loop.holder)}, every "
            f"{interval:g} s; Ctrl-C stops it"
        )
        stop = threading.Event()
        with _stopping_on_signals(stop):
            loop.run(stop)
    console.print("controller stopped")


@contextmanager
def _stopping_on_signals(stop: threading.Event) -> Iterator[None]:
    """Turn SIGINT and SIGTERM into ``stop.set()``, so the loop ends between two ticks."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            if old is not None:  # None: a handler installed outside Python, not restorable
                signal.signal(sig, old)
