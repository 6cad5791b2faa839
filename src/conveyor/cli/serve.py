"""`conveyor serve`: serve the project's deployment (or any registered model) over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from conveyor.cli._app import state
from conveyor.cli._console import console

if TYPE_CHECKING:
    from conveyor.deploy import Controller
    from conveyor.serving._server import ServerConfig

app = typer.Typer()


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Interface to listen on (spec: serve.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="TCP port (spec: serve.port; 0 picks one).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-w", min=1, help="Worker processes (spec: serve.workers)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="models:/NAME@ALIAS or models:/NAME/VERSION to serve (repeatable; default: "
            "the project's deployment: its champion, and its challenger during a rollout).",
            show_default=False,
        ),
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option("--runtime", help="auto, onnx or native (spec: serve.runtime)."),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="Log level of the workers.")
    ] = "warning",
    controller: Annotated[
        bool,
        typer.Option(
            "--controller",
            help="Also run the rollout controller in this process (single-machine setups; "
            "with several replicas run `conveyor controller` once instead).",
        ),
    ] = False,
) -> None:
    """Serve models over HTTP: Conveyor JSON, Open Inference Protocol V2 and MLflow scoring."""
    from conveyor.serving._server import run_server

    config = server_config(
        state(ctx).project,
        host=host,
        port=port,
        workers=workers,
        models=tuple(model or ()),
        runtime=runtime,
        log_level=log_level,
    )

    def report(line: str) -> None:
        console.print(escape(line), soft_wrap=True)

    with ExitStack() as stack:
        background = []
        if controller:
            background.append(stack.enter_context(_controller(state(ctx).project, report)).run)
        code = run_server(config, report=report, background=background)
    if code:
        raise typer.Exit(code)


@contextmanager
def _controller(project: Path | None, report: Callable[[str], None]) -> Iterator[Controller]:
    """The project's rollout controller, with its own connection to the metadata store."""
    from conveyor.deploy import Controller
    from conveyor.session import Session
    from conveyor.store import MetadataStore

    with Session.open(project) as session:
        spec = session.require_spec().spec
        settings = session.settings
        cache_dir = session.project.ensure_state_dir() / "models"
        root = session.project.root
    with MetadataStore(settings.db_url) as store:
        yield Controller.from_spec(
            store,
            spec,
            tracking_uri=settings.mlflow_tracking_uri,
            cache_dir=cache_dir,
            project_root=root,
            artifacts_url=settings.artifacts_url,
            report=lambda line: report(f"controller: {line}"),
        )


def server_config(
    project: Path | None,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    models: tuple[str, ...] = (),
    runtime: str | None = None,
    log_level: str = "warning",
) -> ServerConfig:
    """The server's settings: the spec's ``serve:`` section, overridden by the options given."""
    from conveyor.errors import SettingsError
    from conveyor.serving._server import ServerConfig
    from conveyor.serving.app import AppOptions
    from conveyor.session import Session
    from conveyor.spec import ServeSpec

    with Session.open(project) as session:
        loaded = session.require_spec()
        spec: ServeSpec = loaded.spec.serve
        settings = session.settings
        cache_dir = session.project.ensure_state_dir() / "models"
        log = spec.prediction_log
        if runtime is not None and runtime not in ("auto", "onnx", "native"):
            raise SettingsError(f"--runtime must be auto, onnx or native, not {runtime!r}")
        if log.enabled and "://" not in settings.artifacts_url:
            session.project.ensure_state_dir()
        return ServerConfig(
            model_uris=models,
            project=loaded.spec.name,
            store_url=settings.db_url,
            store_grace_seconds=spec.store_grace_seconds,
            tracking_uri=settings.mlflow_tracking_uri,
            cache_dir=cache_dir,
            host=host if host is not None else spec.host,
            port=port if port is not None else spec.port,
            workers=workers if workers is not None else spec.workers,
            model_threads=spec.model_threads,
            runtime=runtime or spec.runtime,
            app=AppOptions(
                batching=spec.batching.enabled,
                max_batch_size=spec.batching.max_batch_size,
                max_wait_ms=spec.batching.max_wait_ms,
                max_body_bytes=int(spec.max_body_mb * 1024 * 1024),
                cache_size=spec.cache.max_entries if spec.cache.enabled else 0,
                cache_ttl_seconds=spec.cache.ttl_seconds,
            ),
            prediction_log_url=settings.artifacts_url if log.enabled else None,
            log_flush_seconds=log.flush_seconds,
            log_sample_rate=log.sample_rate,
            log_level=log_level,
        )
