"""A live-quality report as one standalone HTML page (plot embedded as PNG, no script)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from conveyor.monitor._html import _STYLE, _figure, _figure_html, _number, _png, _style

if TYPE_CHECKING:
    from conveyor.monitor._quality_report import QualityPoint, QualityReport

__all__ = ["render_quality_html", "series_name"]

_COLOURS = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#57606a")


def series_name(point: QualityPoint) -> str:
    """``"v3"``, or ``"v4 (shadow)"``."""
    return f"v{point.model_version}" + (" (shadow)" if point.shadow else "")


def render_quality_html(report: QualityReport) -> str:
    """The page: one table per version overall, the metric over time, one row per window."""
    better = "higher" if report.direction == "maximize" else "lower"
    sections = [
        f'<p class="sub">{escape(report.metric)} ({better} is better), '
        f"{report.confidence:.0%} bootstrap intervals; cells with fewer than "
        f"{report.min_labels} labelled predictions have no value.</p>",
        "<h2>Per model version</h2>",
        _table(report.versions, windows=False),
    ]
    if report.windows:
        plotted = [p for p in report.windows if p.value is not None]
        if plotted:
            sections += ["<h2>Quality over time</h2>", _plot(report)]
        sections += ["<h2>Per time window</h2>", _table(report.windows, windows=True)]
    title = f"Live quality {report.created_at:%Y-%m-%d %H:%M}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Live quality</h1>"
        f'<p class="sub">{report.created_at:%Y-%m-%d %H:%M:%S} UTC &middot; task '
        f"{escape(str(report.task))}</p>" + "\n".join(sections) + "</body></html>\n"
    )


def _table(points: tuple[QualityPoint, ...], *, windows: bool) -> str:
    head = "<tr>" + ("<th>window (UTC)</th>" if windows else "")
    head += (
        "<th>version</th><th>predictions</th><th>labelled</th><th>coverage</th>"
        "<th>value</th><th>interval</th><th>note</th></tr>"
    )
    rows = []
    for p in points:
        cells = []
        if windows and p.window_start is not None:
            cells.append(f"<td>{p.window_start:%Y-%m-%d %H:%M}</td>")
        interval = (
            f"[{_number(p.ci_low)}, {_number(p.ci_high)}]"
            if p.ci_low is not None and p.ci_high is not None
            else "&ndash;"
        )
        cells += [
            f"<td>{escape(series_name(p))}</td>",
            f'<td class="n">{p.n_predictions:,}</td>',
            f'<td class="n">{p.n_labelled:,}</td>',
            f'<td class="n">{p.coverage:.1%}</td>',
            f'<td class="n">{_number(p.value)}</td>',
            f'<td class="n">{interval}</td>',
            f'<td class="muted">{escape(p.reason or "")}</td>',
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _plot(report: QualityReport) -> str:
    import numpy as np

    figure = _figure(7.2, 3.4)
    ax = figure.add_subplot()
    series: dict[str, list[QualityPoint]] = {}
    for point in report.windows:
        if point.value is not None and point.window_start is not None:
            series.setdefault(series_name(point), []).append(point)
    for index, (name, points) in enumerate(sorted(series.items())):
        colour = _COLOURS[index % len(_COLOURS)]
        times = np.array(
            [p.window_start.replace(tzinfo=None) for p in points if p.window_start],
            dtype="datetime64[us]",
        )
        values = np.array([p.value for p in points], dtype=np.float64)
        style = "--" if points[0].shadow else "-"
        ax.plot(times, values, marker="o", linestyle=style, color=colour, label=name)
        banded = [p for p in points if p.ci_low is not None and p.ci_high is not None]
        if banded:
            band_times = np.array(
                [p.window_start.replace(tzinfo=None) for p in banded if p.window_start],
                dtype="datetime64[us]",
            )
            ax.fill_between(
                band_times,
                np.array([p.ci_low for p in banded], dtype=np.float64),
                np.array([p.ci_high for p in banded], dtype=np.float64),
                color=colour,
                alpha=0.15,
                linewidth=0,
            )
    ax.legend(fontsize=8, frameon=False)
    ax.tick_params(axis="x", labelrotation=30)
    _style(ax, f"{report.metric} per window", report.metric)
    caption = (
        f"{report.metric} of each version per window, with its {report.confidence:.0%} "
        "interval (band); dashed: shadow"
    )
    return _figure_html(_png(figure), caption)
