"""`conveyor labels ingest`: ground-truth labels joined to the prediction log for live quality."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from conveyor.cli._app import state
from conveyor.cli._console import console

app = typer.Typer(
    help="Ground-truth labels for the logged predictions (live quality).", no_args_is_help=True
)


@app.command()
def ingest(
    ctx: typer.Context,
    source: Annotated[
        Path, typer.Argument(help="A CSV or Parquet file of labels.", show_default=False)
    ],
    id_column: Annotated[
        str, typer.Option("--id-column", help="Column holding the request id (X-Request-ID).")
    ] = "request_id",
    row_column: Annotated[
        str,
        typer.Option(
            "--row-column",
            help="Column holding the row within the request (optional in the file: without "
            "it a label applies to every row of its request).",
        ),
    ] = "row",
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="Join by this feature instead of the request id; the file has a column of "
            "that name.",
            show_default="monitor.quality.key",
        ),
    ] = None,
    label_column: Annotated[
        str, typer.Option("--label-column", help="Column holding the label.")
    ] = "label",
) -> None:
    """Store labels next to the prediction log; say how many match logged predictions.

    Labels matching no logged prediction yet are kept: their predictions may be logged later.
    A later ingestion replaces an earlier label of the same prediction.
    """
    from conveyor.cli.rollout import current_user
    from conveyor.monitor import ingest_labels, label_matches
    from conveyor.session import Session

    with Session.open(state(ctx).project) as session:
        spec = session.require_spec().spec
        quality = spec.monitor.quality
        join_key = key if key is not None else (quality.key if quality is not None else None)
        task = spec.model.task if spec.model is not None else None
        artifacts_url = session.settings.artifacts_url
        with console.status("ingesting labels..."):
            batch = ingest_labels(
                artifacts_url,
                source,
                id_column=id_column,
                row_column=row_column,
                key=join_key,
                label_column=label_column,
                task=task,
            )
            matches = label_matches(artifacts_url, key=join_key, path=batch.path)
        session.store.append_audit(
            actor=current_user(),
            action="labels.ingest",
            target=f"project:{spec.name}",
            details={
                "source": str(source),
                "file": batch.path,
                "rows": batch.rows,
                "skipped": batch.skipped,
                "duplicates": batch.duplicates,
                "key": join_key,
                "matched": matches.matched,
                "unmatched": matches.unmatched,
            },
        )
    by = f"by {join_key!r}" if join_key else f"by request id ({id_column!r})"
    console.print(
        f"ingested {batch.rows:,} labels {escape(by)} from {escape(str(source))}"
        + (f"; skipped {batch.skipped:,} rows without a label" if batch.skipped else "")
        + (f"; {batch.duplicates:,} repeated rows (the last one kept)" if batch.duplicates else "")
    )
    console.print(
        f"{matches.matched:,} match logged predictions; {matches.unmatched:,} match none yet "
        "(kept: their predictions may be logged later)"
    )
    if matches.predictions:
        console.print(
            f"labelled predictions now: {matches.labelled:,} of {matches.predictions:,} "
            f"({matches.labelled / matches.predictions:.1%})"
        )
    else:
        console.print("no prediction has been logged yet")
