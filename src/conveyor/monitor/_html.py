"""A drift report as one standalone HTML page: plots embedded, no script, no external assets.

Plots are PNG images drawn on private matplotlib figures with the Agg canvas (no pyplot state,
safe from any thread) and embedded as ``data:`` URIs.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Sequence
from datetime import UTC
from html import escape
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

    from conveyor.monitor._report import ColumnDrift, DriftReport

__all__ = ["HISTORY_COLUMNS", "ordered", "render_html"]

HISTORY_COLUMNS: Final = 8
"""Columns whose scores are drawn over time (the most drifted of the newest report)."""

_DPI: Final = 100
_REF, _CUR, _GRID, _RED = "#8c959f", "#0969da", "#d0d7de", "#cf222e"
_STYLE: Final = """
body{font-family:system-ui,sans-serif;margin:2em auto;padding:0 2em;color:#1f2328;max-width:80em;
line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.8em}
.sub{color:#59636e;margin-top:0}
table{border-collapse:collapse;margin:.5em 0 1.2em}
td,th{border-bottom:1px solid #d0d7de;padding:3px 10px;text-align:left;vertical-align:top}
th{font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.verdict{padding:.8em 1em;border-radius:6px;font-size:1.05em;margin:1em 0 1.5em}
.pass{background:#dafbe1;border:1px solid #1a7f37}
.fail{background:#ffebe9;border:1px solid #cf222e}
.bad{color:#cf222e;font-weight:600}.muted{color:#59636e}
figure{display:inline-block;margin:0 1.5em 1.5em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #d0d7de;border-radius:4px}
figcaption{color:#59636e;font-size:.9em}
""".strip()


def ordered(report: DriftReport) -> list[ColumnDrift]:
    """Columns drifted first, then by how far their value is past (or below) the threshold."""

    def severity(column: ColumnDrift) -> tuple[bool, float]:
        ratio = column.value / column.threshold if column.value is not None else 0.0
        return (not column.drifted, -ratio)

    return sorted(report.columns, key=severity)


def render_html(report: DriftReport, *, history: Sequence[DriftReport] = (), top: int = 20) -> str:
    """The page: verdict, column table, histograms of the ``top`` columns, scores over time."""
    columns = ordered(report)
    verdict_class = "fail" if report.drifted else "pass"
    verdict = "Drift detected" if report.drifted else "No dataset drift"
    sections = [
        f'<div class="verdict {verdict_class}"><b>{verdict}</b>: '
        f"{len(report.drifted_columns)} of {len(report.columns)} columns drifted, weighted "
        f"share {report.drifted_share:.1%} (threshold {report.dataset_share:.0%}).</div>",
        "<h2>Columns</h2>",
        _table(columns),
    ]
    if report.skipped:
        items = "".join(
            f"<li><code>{escape(name)}</code>: {escape(why)}</li>"
            for name, why in report.skipped.items()
        )
        sections.append(f'<p class="muted">Not compared:</p><ul class="muted">{items}</ul>')
    if history:
        sections += ["<h2>Drift over time</h2>", _history(report, history)]
    shown = columns[:top]
    if shown:
        heading = "Reference vs current" + (
            f" (the {len(shown)} most drifted columns)" if len(columns) > len(shown) else ""
        )
        sections.append(f"<h2>{heading}</h2>")
        sections += [_figure_html(_histogram_png(c), _caption(c)) for c in shown]
    subtitle = (
        f"{report.created_at:%Y-%m-%d %H:%M:%S} UTC &middot; reference "
        f"{_rows(report.reference_rows, report.reference_total_rows)} &middot; current "
        f"{_rows(report.current_rows, report.current_total_rows)} &middot; seed {report.seed}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Drift report {report.created_at:%Y-%m-%d %H:%M}</title>"
        f"<style>{_STYLE}</style></head><body><h1>Drift report</h1>"
        f'<p class="sub">{subtitle}</p>' + "\n".join(sections) + "</body></html>\n"
    )


def _rows(kept: int, total: int) -> str:
    return f"{kept:,} rows" + (f" (sampled from {total:,})" if kept != total else "")


def _number(value: float | None, digits: int = 4) -> str:
    return "&ndash;" if value is None else format(value, f".{digits}g")


def _table(columns: list[ColumnDrift]) -> str:
    head = (
        "<tr><th>column</th><th>kind</th><th>method</th><th>value</th><th>threshold</th>"
        "<th>drifted</th><th>missing ref &rarr; cur</th><th>PSI</th><th>KS (p)</th>"
        "<th>Wasserstein</th><th>JS</th><th>Cramér's V (p)</th><th>unseen</th>"
        "<th>weight</th></tr>"
    )
    rows = []
    for c in columns:
        s = c.statistics
        name = escape(c.name) + (
            f' <span class="muted">({escape(c.current_name)})</span>' if c.current_name else ""
        )
        ks = f"{_number(s.get('ks'))} ({_number(s.get('ks_pvalue'), 3)})" if "ks" in s else ""
        chi = (
            f"{_number(s.get('cramers_v'))} ({_number(s.get('chi_square_pvalue'), 3)})"
            if "cramers_v" in s
            else ""
        )
        unseen = ""
        if "unseen_categories" in s:
            unseen = f"{int(s['unseen_categories'] or 0)} ({(s['unseen_share'] or 0):.1%})"
        flag = '<span class="bad">yes</span>' if c.drifted else "no"
        missing = f"{c.reference_missing_rate:.1%} &rarr; {c.current_missing_rate:.1%}"
        wasserstein = _number(s.get("wasserstein")) if "wasserstein" in s else ""
        text = [name, c.kind, c.method]
        numbers = [_number(c.value), _number(c.threshold), flag, missing]
        numbers += [_number(s.get("psi")), ks, wasserstein, _number(s.get("jensen_shannon"))]
        numbers += [chi, unseen, _number(c.weight, 3)]
        cells = [f"<td>{x}" for x in text] + [f'<td class="n">{x}' for x in numbers]
        rows.append("<tr>" + "".join(f"{cell}</td>" for cell in cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _caption(column: ColumnDrift) -> str:
    state = "drifted" if column.drifted else "stable"
    return f"{column.name}: {column.method} {_number(column.value)} ({state})"


def _figure_html(png: bytes, caption: str) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    text = escape(caption)
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{text}">'
        f"<figcaption>{text}</figcaption></figure>"
    )


def _histogram_png(column: ColumnDrift) -> bytes:
    figure = _figure(4.6, 2.8)
    ax = figure.add_subplot()
    h = column.histogram
    ref_total, cur_total = max(sum(h.reference), 1), max(sum(h.current), 1)
    ref = [x / ref_total for x in h.reference]
    cur = [x / cur_total for x in h.current]
    if h.edges:
        widths = [b - a for a, b in zip(h.edges[:-1], h.edges[1:], strict=True)]
        ax.bar(h.edges[:-1], ref, widths, align="edge", color=_REF, alpha=0.6, label="reference")
        ax.bar(h.edges[:-1], cur, widths, align="edge", color=_CUR, alpha=0.45, label="current")
        ax.stairs(cur, h.edges, color=_CUR, linewidth=1)
    else:
        positions = list(range(len(h.labels)))
        ax.bar([p - 0.2 for p in positions], ref, width=0.4, color=_REF, label="reference")
        ax.bar([p + 0.2 for p in positions], cur, width=0.4, color=_CUR, label="current")
        ax.set_xticks(positions, [_short(label) for label in h.labels], rotation=45, ha="right")
    ax.legend(fontsize=8, frameon=False)
    _style(ax, column.name, "share of rows")
    return _png(figure)


def _history(report: DriftReport, history: Sequence[DriftReport]) -> str:
    reports = sorted([*history, report], key=lambda r: r.created_at)
    times = _times(reports)
    share = _figure(6.4, 3.0)
    ax = share.add_subplot()
    ax.plot(times, [r.drifted_share for r in reports], marker="o", color=_CUR)
    ax.axhline(report.dataset_share, color=_RED, linestyle="--", linewidth=1)
    ax.set_ylim(0, 1.05)
    _style(ax, "Share of drifted columns", "share")
    figure = _figure(6.4, 3.0)
    ax = figure.add_subplot()
    for column in ordered(report)[:HISTORY_COLUMNS]:
        points = [
            (r, c.value / c.threshold)
            for r in reports
            for c in r.columns
            if c.name == column.name and c.value is not None
        ]
        if points:
            ratios = [ratio for _, ratio in points]
            ax.plot(_times([r for r, _ in points]), ratios, marker=".", label=_short(column.name))
    ax.axhline(1.0, color=_RED, linestyle="--", linewidth=1)
    ax.legend(fontsize=7, frameon=False, ncols=2)
    _style(ax, "Drift score over time (value / threshold)", "value / threshold")
    for axes in (*share.axes, *figure.axes):
        axes.tick_params(axis="x", labelrotation=30)
    return _figure_html(_png(share), "Weighted share of drifted columns per report") + (
        _figure_html(_png(figure), "Each column's value over its threshold (above 1: drifted)")
    )


def _times(reports: Sequence[DriftReport]) -> NDArray[np.datetime64]:
    """The reports' times as numpy datetimes (naive UTC), which matplotlib plots as dates."""
    import numpy as np

    naive = [r.created_at.astimezone(UTC).replace(tzinfo=None) for r in reports]
    return np.array(naive, dtype="datetime64[us]")


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _style(ax: Axes, title: str, ylabel: str) -> None:
    ax.set_title(_short(title, 48), fontsize=10, loc="left")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, color=_GRID, linewidth=0.5)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _short(text: str, limit: int = 20) -> str:
    """A label as drawn: shortened, characters the font lacks shown as ``?``.

    Replacing them, rather than silencing matplotlib's missing-glyph warning, leaves the
    process-wide warning filters alone (``warnings.catch_warnings`` is not thread-safe).
    """
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    drawable = _drawable()
    return "".join(c if ord(c) in drawable or c.isspace() else "?" for c in text)


@functools.cache
def _drawable() -> frozenset[int]:
    from matplotlib import font_manager

    font = font_manager.get_font(font_manager.findfont(font_manager.FontProperties()))
    return frozenset(font.get_charmap())
