"""`conveyor models ...`: list, show, promote and roll back registered model versions."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli._app import state
from conveyor.cli._console import console

if TYPE_CHECKING:
    from conveyor.registry import ModelRegistry, ModelVersionInfo
    from conveyor.session import Session

app = typer.Typer(
    help="List, inspect, promote and roll back registered model versions.", no_args_is_help=True
)

Ref = Annotated[str, typer.Argument(help="A version number, or an alias such as champion.")]
Reason = Annotated[
    str, typer.Option("--reason", "-r", help="Why; kept in the audit log.", show_default=False)
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]

#: Tags shown in their own section of `models show` rather than under "other tags".
_LINEAGE_TAGS = (
    "conveyor.project",
    "conveyor.pipeline_run",
    "conveyor.dataset_version",
    "conveyor.raw_dataset_version",
    "conveyor.validation_report",
    "conveyor.spec_sha256",
    "conveyor.model_sha256",
)
_MODEL_TAGS = (
    "conveyor.algorithm",
    "conveyor.task",
    "conveyor.onnx_verified",
    "conveyor.onnx_max_abs_diff",
)


@contextmanager
def open_registry(ctx: typer.Context) -> Iterator[tuple[Session, ModelRegistry]]:
    """The session of the current project and the registry of its model (named after it)."""
    from conveyor.registry import ModelRegistry, connect
    from conveyor.session import Session

    with Session.open(state(ctx).project) as session:
        name = session.require_spec().spec.name
        client = connect(session.settings.mlflow_tracking_uri)
        yield session, ModelRegistry(client, name)


def empty_hint(name: str) -> str:
    """The line printed when a project has no registered model yet."""
    return f"no model registered yet for project {name}; run `conveyor run`"


@app.command("list")
def list_(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List the model versions, newest first, with aliases, data, metrics and gate result."""
    with open_registry(ctx) as (_, registry):
        versions = registry.versions()
    if as_json:
        console.print_json(data=[version_json(v) for v in versions])
        return
    if not versions:
        console.print(escape(empty_hint(registry.name)))
        return
    console.print(render_versions(versions))


def render_versions(versions: Sequence[ModelVersionInfo]) -> Table:
    """A table of model versions: aliases, creation, dataset, metrics, gate and ONNX check."""
    table = Table("version", "aliases", "created", "dataset", "metrics", "gate", "onnx")
    for version in versions:
        table.add_row(
            str(version.version),
            _aliases(version),
            _when(version),
            escape(version.tags.get("conveyor.dataset_version", "-")[:12]),
            escape(_metrics(version, limit=3)),
            _gate(version.tags.get("conveyor.gate")),
            _onnx(version.tags.get("conveyor.onnx_verified")),
        )
    return table


@app.command()
def show(ctx: typer.Context, ref: Ref, as_json: AsJson = False) -> None:
    """Show one version: lineage tags, metrics, gate, ONNX check and where it came from."""
    from conveyor.registry import PREVIOUS_CHAMPION_TAG, lineage

    with open_registry(ctx) as (session, registry):
        version = registry.get(ref)
        chain = lineage(registry, version.version, store=session.store)
    if as_json:
        console.print_json(data={**version_json(version), "lineage": chain})
        return
    tags = version.tags
    console.print(f"model [bold]{escape(version.name)}[/] version [bold]{version.version}[/]")
    console.print(f"  aliases   {_aliases(version)}")
    console.print(f"  created   {_when(version)}")
    console.print(f"  source    {escape(version.source)}")
    if version.description:
        console.print(f"  about     {escape(version.description)}")
    if PREVIOUS_CHAMPION_TAG in tags:
        console.print(f"  replaced  {_previous(tags[PREVIOUS_CHAMPION_TAG])}")
    console.print(_section("model", {k: tags.get(k) for k in _MODEL_TAGS}))
    console.print(_section("metrics", {k: f"{v:.6g}" for k, v in version.metrics.items()}))
    console.print(f"[bold]gate[/]  {_gate(tags.get('conveyor.gate'), full=True)}")
    console.print(_section("lineage", {k: tags.get(k) for k in _LINEAGE_TAGS}))
    mlflow_run = chain["mlflow_run"]
    if isinstance(mlflow_run, dict) and mlflow_run.get("link"):
        console.print(f"  mlflow run  {escape(str(mlflow_run['link']))}")
    known = {*_LINEAGE_TAGS, *_MODEL_TAGS, "conveyor.gate", PREVIOUS_CHAMPION_TAG}
    other = {
        k: v for k, v in tags.items() if k not in known and not k.startswith("conveyor.metric.")
    }
    if other:
        console.print(_section("other tags", other))
    console.print(f"see [bold]conveyor lineage {version.version}[/] for the whole chain")


@app.command()
def promote(ctx: typer.Context, ref: Ref, reason: Reason) -> None:
    """Make a version the champion (the model in production)."""
    with open_registry(ctx) as (session, registry):
        before = registry.alias("champion")
        version = registry.promote(ref, reason=reason, actor=_actor(), store=session.store)
    was = f" (was version {before.version})" if before else ""
    console.print(
        f"[green]✓[/] version [bold]{version.version}[/] of {escape(version.name)} is champion{was}"
    )


@app.command()
def rollback(ctx: typer.Context, reason: Reason) -> None:
    """Give the champion alias back to the version the current champion replaced."""
    with open_registry(ctx) as (session, registry):
        before = registry.alias("champion")
        version = registry.rollback(reason=reason, actor=_actor(), store=session.store)
    was = f" (rolled back from version {before.version})" if before else ""
    console.print(
        f"[green]✓[/] version [bold]{version.version}[/] of {escape(version.name)} is "
        f"champion again{was}"
    )


def version_json(version: ModelVersionInfo) -> dict[str, Any]:
    """A model version as JSON-ready data."""
    return {
        "name": version.name,
        "version": version.version,
        "aliases": list(version.aliases),
        "created_at": version.created_at.isoformat(),
        "run_id": version.run_id,
        "source": version.source,
        "description": version.description,
        "metrics": version.metrics,
        "tags": version.tags,
    }


def _section(title: str, values: Mapping[str, str | None]) -> str:
    lines = [f"[bold]{title}[/]"]
    width = max((len(_short(k)) for k in values), default=0)
    for key, value in values.items():
        lines.append(f"  {escape(_short(key)).ljust(width)}  {escape(value or 'unknown')}")
    return "\n".join(lines) if values else f"[bold]{title}[/]  none"


def _short(tag: str) -> str:
    return tag.removeprefix("conveyor.")


def _aliases(version: ModelVersionInfo) -> str:
    styles = {"champion": "bold green", "challenger": "yellow"}
    shown = [f"[{styles.get(a, 'cyan')}]{escape(a)}[/]" for a in version.aliases]
    return ", ".join(shown) or "-"


def _metrics(version: ModelVersionInfo, *, limit: int) -> str:
    items = list(version.metrics.items())
    text = ", ".join(f"{k}={v:.4g}" for k, v in items[:limit])
    return (text + (", ..." if len(items) > limit else "")) or "-"


def _gate(raw: str | None, *, full: bool = False) -> str:
    if not raw:
        return "-"
    try:
        summary = json.loads(raw)
    except ValueError:
        return escape(raw if full else raw[:20])
    verdict = summary.get("passed") if isinstance(summary, dict) else None
    if isinstance(verdict, bool):
        label = "[green]passed[/]" if verdict else "[red]failed[/]"
    elif isinstance(summary, dict) and "status" in summary:
        label = escape(str(summary["status"]))
    else:
        label = escape(raw if full else raw[:20])
    return f"{label}  {escape(raw)}" if full and label != escape(raw) else label


def _previous(raw: str) -> str:
    return f"champion version {raw}" if raw else "no champion (it was the first)"


def _onnx(raw: str | None) -> str:
    if raw is None:
        return "-"
    return "[green]yes[/]" if raw.lower() in ("true", "1", "yes") else "[yellow]no[/]"


def _when(version: ModelVersionInfo) -> str:
    return version.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _actor() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
