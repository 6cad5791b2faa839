"""`conveyor lineage VERSION|ALIAS`: the chain from data sources to a model version."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.tree import Tree

from conveyor.cli._console import STATUS_STYLE, console
from conveyor.cli.models import AsJson, open_registry

app = typer.Typer()

_UNKNOWN = "[dim]unknown[/]"


@app.command()
def lineage(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(help="A version number, or an alias such as champion.")
    ] = "champion",
    as_json: AsJson = False,
) -> None:
    """Show where a model version came from: sources, datasets, runs, version, deployments."""
    from conveyor.registry import lineage as trace

    with open_registry(ctx) as (session, registry):
        chain = trace(registry, ref, store=session.store)
    if as_json:
        console.print_json(data=chain)
        return
    console.print(render(chain))


def render(chain: dict[str, Any]) -> Tree:
    """The lineage chain as a tree: each link is the child of the one it came from."""
    version = chain["model_version"]
    root = Tree(f"lineage of [bold]{escape(version['name'])}[/] version {version['version']}")
    node = root.add("[bold]sources[/]")
    sources = chain["sources"]
    if isinstance(sources, list) and sources:
        for source in sources:
            details = ", ".join(
                f"{k}={v}" for k, v in source.items() if k != "name" and v not in (None, "")
            )
            node.add(f"{escape(str(source['name']))}  [dim]{escape(details)}[/]")
    else:
        node.add(_UNKNOWN)
    node = node.add(_dataset("raw dataset", chain["raw_dataset"]))
    node = node.add(_dataset("validated dataset", chain["validated_dataset"]))
    node = node.add(_pipeline_run(chain["pipeline_run"]))
    node = node.add(_mlflow_run(chain["mlflow_run"]))
    node = node.add(_model_version(version))
    deployments = node.add("[bold]deployments[/]")
    for deployment in chain["deployments"] or ():
        split = ", ".join(f"v{v} {w:g}%" for v, w in deployment["weights"].items())
        deployments.add(
            escape(
                f"{deployment['id'][:8]} {deployment['policy']} as {deployment['role']}: "
                f"{deployment['state']} ({split}) {deployment['created_at'][:19]}"
            )
        )
    if not chain["deployments"]:
        deployments.add("[dim]none yet[/]")
    return root


def _missing(title: str, link: Any) -> str | None:
    if not isinstance(link, dict):
        return f"[bold]{title}[/] {_UNKNOWN}"
    if link.get("found") is False:
        return f"[bold]{title}[/] {escape(str(link['id']))} [yellow](not found)[/]"
    return None


def _dataset(title: str, link: Any) -> str:
    missing = _missing(title, link)
    if missing:
        return missing
    text = (
        f"[bold]{title}[/] {escape(link['id'])}  {link['rows']:,} rows, "
        f"sha256 {link['sha256'][:12]}"
    )
    if "validation_report" in link:
        report = str(link["validation_report"])
        text += f", report {escape(report[:12])}"
    if link.get("quarantined_rows"):
        text += f", {link['quarantined_rows']:,} quarantined"
    return text


def _pipeline_run(link: Any) -> str:
    missing = _missing("pipeline run", link)
    if missing:
        return missing
    style = STATUS_STYLE.get(link["status"], "")
    finished = f" → {link['finished_at'][:19]}" if link.get("finished_at") else ""
    return (
        f"[bold]pipeline run[/] {link['id'][:8]}  [{style}]{link['status']}[/]  "
        f"{link['created_at'][:19]}{finished} by {escape(link['actor'])}"
    )


def _mlflow_run(link: Any) -> str:
    missing = _missing("mlflow run", link)
    if missing:
        return missing
    text = (
        f"[bold]mlflow run[/] {link['id']}  {escape(str(link['run_name']))} in experiment "
        f"{escape(str(link['experiment']))}"
    )
    if link.get("link"):
        text += f"\n{escape(link['link'])}"
    return text


def _model_version(version: dict[str, Any]) -> str:
    aliases = ", ".join(version["aliases"]) or "no alias"
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in version["metrics"].items()) or "no metrics"
    return (
        f"[bold]model version[/] {version['version']}  [green]{escape(aliases)}[/]  "
        f"{escape(metrics)}  [dim]{escape(str(version['algorithm']))}[/]"
    )
