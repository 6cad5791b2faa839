"""The flights demo's steps: join flights with weather, profile the table, rate delays, report."""

from __future__ import annotations

import csv
import html
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from conveyor.pipeline import StepContext

_WEATHER = ("temp", "wind_speed", "precip", "visib")


def join_weather(ctx: StepContext) -> None:
    """Left-join each flight with the weather at its origin and hour; label delays."""
    flights_path, weather_path = ctx.files
    weather: dict[tuple[str, str], dict[str, str]] = {}
    with weather_path.open(newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            weather[(row["origin"], row["time_hour"])] = {k: row[k] for k in _WEATHER}
    threshold = float(ctx.config["delay_minutes"])
    total = _count_lines(flights_path)
    with (
        flights_path.open(newline="", encoding="utf-8") as source,
        ctx.output_path("table").open("w", newline="", encoding="utf-8") as target,
    ):
        reader = csv.DictReader(source)
        fields = [*(reader.fieldnames or []), *_WEATHER, "delayed"]
        writer = csv.DictWriter(target, fieldnames=fields)
        writer.writeheader()
        for done, row in enumerate(reader, start=1):
            if row["arr_delay"] in ("", "NA"):
                continue  # cancelled or diverted: no label
            matched = weather.get((row["origin"], row["time_hour"]), dict.fromkeys(_WEATHER, ""))
            writer.writerow({**row, **matched, "delayed": int(float(row["arr_delay"]) > threshold)})
            if done % 20_000 == 0:
                ctx.progress(done, total, f"joined {done:,} flights")
    ctx.progress(total, total)


def profile(ctx: StepContext) -> None:
    """Rows, nulls and numeric ranges per column."""
    stats: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"nulls": 0, "numeric": 0, "min": math.inf, "max": -math.inf, "sum": 0.0}
    )
    rows = 0
    for row in _rows(ctx.inputs["table"]):
        rows += 1
        for column, value in row.items():
            entry = stats[column]
            if value in ("", "NA"):
                entry["nulls"] += 1
                continue
            try:
                number = float(value)
            except ValueError:
                continue
            entry["numeric"] += 1
            entry["sum"] += number
            entry["min"] = min(entry["min"], number)
            entry["max"] = max(entry["max"], number)
    columns = {
        name: {
            "null_fraction": round(s["nulls"] / rows, 4) if rows else 0.0,
            **(
                {"min": s["min"], "mean": round(s["sum"] / s["numeric"], 3), "max": s["max"]}
                if s["numeric"]
                else {}
            ),
        }
        for name, s in stats.items()
    }
    ctx.output_path("profile").write_text(json.dumps({"rows": rows, "columns": columns}, indent=2))


def delay_rates(ctx: StepContext) -> None:
    """Share of flights arriving late, per carrier and per origin airport."""
    counts: dict[str, dict[str, list[int]]] = {"carrier": {}, "origin": {}}
    for row in _rows(ctx.inputs["table"]):
        for key, groups in counts.items():
            group = groups.setdefault(row[key], [0, 0])
            group[0] += 1
            group[1] += int(row["delayed"])
    for key, output in (("carrier", "by_carrier"), ("origin", "by_origin")):
        rates = {
            name: {"flights": n, "delay_rate": round(late / n, 4)}
            for name, (n, late) in sorted(counts[key].items())
        }
        ctx.output_path(output).write_text(json.dumps(rates, indent=2))


def report(ctx: StepContext) -> dict[str, str]:
    """One HTML page: the data profile and a bar chart of delay rates per carrier."""
    prof = json.loads(ctx.inputs["profile"].read_text())
    carriers = json.loads(ctx.inputs["by_carrier"].read_text())
    origins = json.loads(ctx.inputs["by_origin"].read_text())
    profile_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{c['null_fraction']:.2%}</td>"
        f"<td>{c.get('min', '')}</td><td>{c.get('mean', '')}</td><td>{c.get('max', '')}</td></tr>"
        for name, c in prof["columns"].items()
    )
    origin_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{o['flights']:,}</td><td>{o['delay_rate']:.1%}</td></tr>"
        for name, o in origins.items()
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Flights delay report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}</style></head><body>
<h1>Flights delay report</h1><p>{prof["rows"]:,} flights with a known arrival time.</p>
<h2>Share of flights arriving &gt; 15 min late, by carrier</h2>{_bar_chart(carriers)}
<h2>By origin</h2><table><tr><th>origin</th><th>flights</th><th>late</th></tr>{origin_rows}</table>
<h2>Profile</h2><table><tr><th>column</th><th>nulls</th><th>min</th><th>mean</th><th>max</th></tr>
{profile_rows}</table></body></html>"""
    return {"html": page}


def _bar_chart(rates: dict[str, dict[str, float]]) -> str:
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


def _rows(path: Path) -> Any:
    with path.open(newline="", encoding="utf-8") as stream:
        yield from csv.DictReader(stream)


def _count_lines(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b"")) - 1
