"""`conveyor k8s ...`: Kubernetes manifests and a Dockerfile for the server and the controller."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli._app import state
from conveyor.cli._console import console, err_console

app = typer.Typer(
    help="Run the project on Kubernetes: manifests for the server and the controller, and a "
    "Dockerfile for their image.",
    no_args_is_help=True,
)

_STATUS_STYLE = {"created": "green", "updated": "yellow", "unchanged": "dim"}


@app.command()
def render(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            file_okay=False,
            help="Folder to write into (default: k8s/ in the project).",
            show_default=False,
        ),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option("--image", help="Container image (default: NAME:latest).", show_default=False),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Namespace of every object (default: none, kubectl's).",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Prefix of the objects' names (default: the spec's name).",
            show_default=False,
        ),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            help="Secret with the backend URLs (default: NAME-conveyor).",
            show_default=False,
        ),
    ] = None,
    replicas: Annotated[
        int | None,
        typer.Option(
            "--replicas",
            help="Server replicas before autoscaling (default: --min-replicas).",
            show_default=False,
        ),
    ] = None,
    min_replicas: Annotated[
        int, typer.Option("--min-replicas", help="Fewest server replicas.")
    ] = 2,
    max_replicas: Annotated[int, typer.Option("--max-replicas", help="Most server replicas.")] = 10,
    target_cpu: Annotated[
        int, typer.Option("--target-cpu", help="Autoscaling CPU target, % of the CPU request.")
    ] = 70,
    target_rps: Annotated[
        float,
        typer.Option(
            "--target-rps",
            help="Autoscaling target of requests per second per replica (needs "
            "prometheus-adapter; 0 scales on CPU only).",
        ),
    ] = 100.0,
    cpu: Annotated[
        str | None,
        typer.Option(
            "--cpu",
            help="CPU request per server replica (default: serve.workers x serve.model_threads).",
            show_default=False,
        ),
    ] = None,
    memory: Annotated[
        str | None,
        typer.Option(
            "--memory",
            help="Memory request and limit per server replica (default: 512Mi + 512Mi per worker).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files edited since they were rendered.")
    ] = False,
) -> None:
    """Write the manifests (server, controller, spec ConfigMap) and the image's Dockerfile."""
    from conveyor.deploy.k8s import K8sOptions, render_manifests, secret_command, write_files
    from conveyor.session import Session

    with Session.open(state(ctx).project) as session:
        loaded = session.require_spec()
        root = session.project.root
    out_dir = (out.expanduser() if out is not None else root / "k8s").absolute()
    options = K8sOptions(
        image=image,
        namespace=namespace,
        name=name,
        secret=secret,
        replicas=replicas,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_cpu=target_cpu,
        target_rps=target_rps,
        cpu=cpu,
        memory=memory,
    )
    rendering = render_manifests(loaded, root, options, out_dir=out_dir)
    written = write_files(rendering.files, out_dir, force=force)

    table = Table(title=f"{_shown(out_dir)}/", title_justify="left")
    table.add_column("file")
    table.add_column("")
    for path, status in written:
        table.add_row(escape(path.name), f"[{_STATUS_STYLE[status]}]{status}[/]")
    console.print(table)
    for warning in rendering.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    plan = rendering.plan
    dockerfile = _shown(out_dir / "Dockerfile")
    steps = [
        f"docker build -f {dockerfile} -t {plan.image} {_shown(root)} && docker push {plan.image}",
        secret_command(plan, rendering.secret_keys),
        f"kubectl apply -f {_shown(out_dir)}/",
    ]
    console.print("next:")
    for number, step in enumerate(steps, 1):
        first, *rest = step.splitlines()
        # Shell lines end with "\", which markup escaping would double: print them as is.
        for line in (f"  {number}. {first}", *(f"     {line}" for line in rest)):
            console.print(line, markup=False, highlight=False, soft_wrap=True)


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it, else absolute."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive, on Windows
        return path.as_posix()
    return path.as_posix() if relative.startswith("..") else Path(relative).as_posix()
