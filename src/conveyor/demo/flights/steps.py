"""The flights demo's own steps: delay rates per carrier and origin, and an HTML report."""

from __future__ import annotations

import html
import json
from typing import Any

from conveyor.pipeline import StepContext


def delay_rates(ctx: StepContext) -> None:
    """Share of flights arriving more than 15 minutes late, per carrier and per origin."""
    import duckdb

    table = str(ctx.inputs["dataset"]).replace("'", "''")
    with duckdb.connect() as con:
        for key, output in (("carrier", "by_carrier"), ("origin", "by_origin")):
            rows = con.execute(
                f"select {key}, count(*), avg(delayed::int) from read_parquet('{table}') "
                f"group by {key} order by {key}"
            ).fetchall()
            rates = {name: {"flights": n, "delay_rate": round(rate, 4)} for name, n, rate in rows}
            ctx.output_path(output).write_text(json.dumps(rates, indent=2))


def report(ctx: StepContext) -> dict[str, str]:
    """One HTML page: validation outcome, delay rates per carrier (a bar chart) and origin."""
    carriers = json.loads(ctx.inputs["by_carrier"].read_text())
    origins = json.loads(ctx.inputs["by_origin"].read_text())
    validation = json.loads(ctx.inputs["validation"].read_text())
    flights = sum(o["flights"] for o in origins.values())
    origin_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{o['flights']:,}</td>"
        f"<td>{o['delay_rate']:.1%}</td></tr>"
        for name, o in origins.items()
    )
    quarantined = validation.get("quarantined_rows", 0)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Flights delay report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}</style></head><body>
<h1>Flights delay report</h1>
<p>{flights:,} validated flights (dataset {html.escape(str(validation.get("dataset", "")))});
{quarantined:,} rows were quarantined by the schema checks.</p>
<h2>Share of flights arriving &gt; 15 min late, by carrier</h2>{_bar_chart(carriers)}
<h2>By origin</h2><table><tr><th>origin</th><th>flights</th><th>late</th></tr>{origin_rows}
</table></body></html>"""
    return {"html": page}


def _bar_chart(rates: dict[str, dict[str, Any]]) -> str:
    width, bar, gap = 520, 18, 6
    items = sorted(rates.items(), key=lambda kv: -kv[1]["delay_rate"])
    height = len(items) * (bar + gap)
    scale = (width - 120) / max((r["delay_rate"] for _, r in items), default=1.0)
    bars = "".join(
        f'<text x="0" y="{i * (bar + gap) + 13}" font-size="12">{html.escape(name)}</text>'
        f'<rect x="40" y="{i * (bar + gap)}" width="{r["delay_rate"] * scale:.1f}" '
        f'height="{bar}" fill="#4a7bd0"/><text x="{r["delay_rate"] * scale + 46:.1f}" '
        f'y="{i * (bar + gap) + 13}" font-size="12">{r["delay_rate"]:.1%}</text>'
        for i, (name, r) in enumerate(items)
    )
    return f'<svg width="{width}" height="{height}" role="img">{bars}</svg>'
