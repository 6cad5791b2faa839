"""`conveyor data ...`: ingest, validate, list, show, diff and profile dataset versions."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli._app import state
from conveyor.cli._console import console

if TYPE_CHECKING:
    from conveyor.session import Session
    from conveyor.store import DatasetVersionRecord

app = typer.Typer(
    help="Ingest, validate, list, compare and profile dataset versions.", no_args_is_help=True
)


def _open(ctx: typer.Context, *, need_spec: bool = True) -> Session:
    from conveyor.session import Session

    return Session.open(state(ctx).project, need_spec=need_spec)


@app.command()
def ingest(
    ctx: typer.Context,
    allow_schema_change: Annotated[
        bool, typer.Option(help="Record the snapshot even if its columns changed.")
    ] = False,
) -> None:
    """Read the sources into a new, content-addressed dataset version (Parquet)."""
    from conveyor.data import take_snapshot

    with _open(ctx) as session, tempfile.TemporaryDirectory(prefix="conveyor-ingest-") as tmp:
        loaded = session.require_spec()
        spec = loaded.spec
        with console.status("reading the sources..."):
            snapshot = take_snapshot(
                spec.name,
                spec.sources,
                spec.dataset,
                raw_sources=dict(loaded.raw.get("sources") or {}),
                project_root=session.project.root,
                workdir=Path(tmp),
                store=session.store,
                artifacts=session.artifacts,
                allow_schema_change=allow_schema_change
                or bool(spec.dataset and spec.dataset.on_schema_change == "allow"),
            )
        version = snapshot.version
        console.print(
            f"[green]✓[/] dataset version [bold]{version.id}[/]: {version.row_count:,} rows, "
            f"{len(version.schema)} columns, sha256 {version.sha256[:12]}"
        )


@app.command()
def validate(
    ctx: typer.Context,
    version: Annotated[
        str | None, typer.Argument(help="A raw dataset version (default: the latest).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Where to write the HTML report.", dir_okay=False)
    ] = None,
) -> None:
    """Check a snapshot against `schema:`; bad rows go to quarantine with a reason each."""
    from conveyor.data import RAW, dataset_name, validate_version, validation_failure

    with _open(ctx) as session, tempfile.TemporaryDirectory(prefix="conveyor-validate-") as tmp:
        spec = session.require_spec().spec
        raw = _version(session, version, dataset_name(spec.name, RAW))
        workdir = Path(tmp)
        with console.status(f"validating {raw.row_count:,} rows of {raw.id}..."):
            local = session.artifacts.get_file(raw.sha256, workdir / "raw.parquet")
            validated = validate_version(
                spec.name,
                raw,
                local,
                spec.schema_,
                time_column=spec.dataset.time_column if spec.dataset else None,
                workdir=workdir,
                store=session.store,
                artifacts=session.artifacts,
            )
        target = report or session.project.root / "reports" / f"validation-{raw.id}.html"
        session.artifacts.get_file(validated.html_digest, target)
        table = Table("check", "failed", "passed", "detail")
        for check in validated.result.checks:
            mark = "[green]yes[/]" if check.passed else "[red]no[/]"
            table.add_row(check.name, f"{check.failed:,}", mark, escape(check.detail))
        console.print(table)
        if validated.version is None:
            raise validation_failure(validated, target)
        console.print(
            f"[green]✓[/] validated version [bold]{validated.version.id}[/]: "
            f"{validated.result.clean_rows:,} clean rows, "
            f"{validated.result.quarantined_rows:,} quarantined; report: {target}"
        )


@app.command()
def versions(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many versions.")] = 20,
) -> None:
    """List dataset versions, newest first."""
    with _open(ctx) as session:
        records = _all_versions(session, limit)
        if not records:
            console.print("No dataset versions yet; create one with [bold]conveyor data ingest[/]")
            return
        table = Table("version", "stage", "rows", "columns", "created", "parents")
        for record in records:
            table.add_row(
                record.id,
                record.name.rpartition("/")[2],
                f"{record.row_count:,}",
                str(len(record.schema)),
                record.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                ", ".join(record.parents) or "-",
            )
        console.print(table)


@app.command()
def show(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="Dataset version id (or a unique prefix).")],
) -> None:
    """Describe a dataset version: columns, lineage, artifacts and statistics."""
    import json

    with _open(ctx, need_spec=False) as session:
        record = session.store.get_dataset_version(version)
        console.print(f"dataset version [bold]{record.id}[/] ({record.name})")
        console.print(f"  rows      {record.row_count:,}")
        console.print(f"  sha256    {record.sha256}")
        console.print(f"  created   {record.created_at.astimezone():%Y-%m-%d %H:%M:%S}")
        console.print(f"  run       {record.run_id or '-'}")
        console.print(f"  parents   {', '.join(record.parents) or '-'}")
        columns = Table("column", "type")
        for name, kind in record.schema.items():
            columns.add_row(name, kind)
        console.print(columns)
        for title, value in (
            ("lineage", record.source),
            ("stats", record.stats),
            ("artifacts", record.artifacts),
        ):
            if value:
                console.print(f"{title}:")
                console.print_json(json.dumps(value, default=str))


@app.command()
def diff(
    ctx: typer.Context,
    first: Annotated[str, typer.Argument(help="The older dataset version.")],
    second: Annotated[str, typer.Argument(help="The newer dataset version.")],
) -> None:
    """Compare two dataset versions: rows, columns, types and per-column statistics."""
    from conveyor.data.profiling import diff_parquet

    with _open(ctx, need_spec=False) as session, tempfile.TemporaryDirectory() as tmp:
        a, b = (session.store.get_dataset_version(v) for v in (first, second))
        with console.status("comparing..."):
            paths = [
                session.artifacts.get_file(r.sha256, Path(tmp) / f"{i}.parquet")
                for i, r in enumerate((a, b))
            ]
            result = diff_parquet(paths[0], paths[1])
        console.print(f"[bold]{a.id}[/] → [bold]{b.id}[/]")
        for line in result.summary_lines():
            console.print(f"  {escape(line)}")


@app.command()
def profile(
    ctx: typer.Context,
    source: Annotated[
        str | None,
        typer.Argument(help="A source name from the spec (default: the dataset query's result)."),
    ] = None,
) -> None:
    """Per-column statistics of a source, and a `schema:` block inferred from it."""
    from conveyor.data import profile_sources
    from conveyor.data.profiling import propose_schema

    with _open(ctx) as session, tempfile.TemporaryDirectory(prefix="conveyor-profile-") as tmp:
        spec = session.require_spec().spec
        with console.status(f"profiling {source or 'the dataset'}..."):
            result = profile_sources(
                spec.sources,
                spec.dataset,
                source,
                project_root=session.project.root,
                workdir=Path(tmp),
            )
        console.print(_profile_table(result))
        console.print(
            "\nProposed `schema:` block (review it before pasting it into conveyor.yaml):"
        )
        console.print(escape(propose_schema(result)), highlight=False)


def _profile_table(result: Any) -> Table:
    table = Table(
        "column",
        "type",
        "nulls",
        "distinct",
        "min",
        "max",
        "mean",
        "top values",
        title=f"{result.rows:,} rows",
    )
    for column in result.columns:
        top = ", ".join(f"{value} ({count:,})" for value, count in column.top[:3])
        table.add_row(
            column.name,
            column.type,
            f"{column.null_fraction:.1%}",
            f"{column.distinct:,}",
            escape(str(column.min)) if column.min is not None else "",
            escape(str(column.max)) if column.max is not None else "",
            f"{column.mean:.4g}" if column.mean is not None else "",
            escape(top),
        )
    return table


def _version(session: Session, given: str | None, name: str) -> DatasetVersionRecord:
    from conveyor.errors import RecordNotFoundError

    if given is not None:
        return session.store.get_dataset_version(given)
    latest = session.store.list_dataset_versions(name=name, limit=1)
    if not latest:
        raise RecordNotFoundError(
            "no dataset version yet; create one with `conveyor data ingest` or `conveyor run`"
        )
    return latest[0]


def _all_versions(session: Session, limit: int) -> list[DatasetVersionRecord]:
    from conveyor.data import RAW, VALIDATED, dataset_name

    if session.name is None:
        return session.store.list_dataset_versions(limit=limit)
    records = [
        record
        for stage in (RAW, VALIDATED)
        for record in session.store.list_dataset_versions(
            name=dataset_name(session.name, stage), limit=limit
        )
    ]
    return sorted(records, key=lambda r: r.created_at, reverse=True)[:limit]
