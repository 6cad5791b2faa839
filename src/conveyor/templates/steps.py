"""Steps of this project's pipeline; the spec names them as `steps:function`."""

from __future__ import annotations

import csv
import json
import statistics
from typing import Any

from conveyor.pipeline import StepContext


def load_rows(ctx: StepContext) -> None:
    """Read every CSV file of the step's `files:` into one JSON list of records."""
    rows: list[dict[str, str]] = []
    for path in ctx.files:
        with path.open(newline="", encoding="utf-8") as stream:
            rows.extend(csv.DictReader(stream))
    ctx.output_path("rows").write_text(json.dumps(rows), encoding="utf-8")


def summarize(ctx: StepContext) -> dict[str, str]:
    """Count the rows and describe each numeric column (min, mean, max)."""
    rows = json.loads(ctx.inputs["rows"].read_text(encoding="utf-8"))
    columns: dict[str, Any] = {}
    summary = {"rows": len(rows), "columns": columns}
    for column in rows[0] if rows else []:
        try:
            values = [float(row[column]) for row in rows if row[column] != ""]
        except ValueError:
            continue  # not numeric
        digits = ctx.config["round"]
        columns[column] = {
            "min": min(values),
            "mean": round(statistics.fmean(values), digits),
            "max": max(values),
        }
    return {"summary": json.dumps(summary, indent=2)}
