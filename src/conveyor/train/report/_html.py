"""The model card as one standalone HTML page: plots embedded, no script, no external assets."""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any, Final

from conveyor.spec import Direction
from conveyor.train.evaluation import MetricValue
from conveyor.train.evaluation._results import format_number
from conveyor.train.report._card import (
    LIMITATIONS_PROMPT,
    SLICE_TOLERANCE,
    CardInputs,
    champion_check,
    champion_rows,
    feature_rows,
    format_value,
    gate_verdict,
    intended_use,
    ordered_plots,
    param_rows,
    plot_title,
    skipped_metrics,
    skipped_slices,
    slice_rows,
    title,
    tuning_summary,
)

__all__ = ["render_model_card_html"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;padding:0 2em;color:#1f2328;max-width:72em;
line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.8em}
.sub{color:#59636e;margin-top:0}
table{border-collapse:collapse;margin:.5em 0 1.2em}
td,th{border-bottom:1px solid #d0d7de;padding:3px 10px;text-align:left;vertical-align:top}
th{font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ci{color:#59636e;font-size:.85em}
.verdict{padding:.8em 1em;border-radius:6px;font-size:1.05em;margin:1em 0 1.5em}
.pass{background:#dafbe1;border:1px solid #1a7f37}
.fail{background:#ffebe9;border:1px solid #cf222e}
.none{background:#f6f8fa;border:1px solid #d0d7de}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}.muted{color:#59636e}
.prompt{background:#fff8c5;border:1px solid #d4a72c;padding:.6em 1em;border-radius:6px}
.wide{overflow-x:auto}
.bar{background:#eaeef2;width:16em;height:.9em;border-radius:2px}
.bar span{display:block;height:100%;background:#0969da;border-radius:2px}
code{font-size:.9em;word-break:break-all}
figure{display:inline-block;margin:0 1.5em 1.5em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #d0d7de;border-radius:4px}
figcaption{color:#59636e;font-size:.9em}
td table{margin:0}td table th,td table td{border:0;padding:0 10px 0 0}
""".strip()

_MIME: Final = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "svg": "image/svg+xml",
}


def render_model_card_html(card: CardInputs) -> str:
    """The model card as a standalone HTML page.

    Sections: summary with the gate verdict, intended use and limitations, data, metrics with
    their intervals, the champion comparison, per-slice metrics (slices much worse than the
    whole holdout are flagged), features and their importance, parameters, lineage and the
    plots (embedded as ``data:`` URIs). Every string from the caller is escaped; the page
    loads nothing from elsewhere and runs no script.
    """
    heading = f"Model card: {title(card)}"
    sections = [
        f"<h1>{escape(heading)}</h1>",
        f'<p class="sub">{escape(str(card.task))} with {escape(card.algorithm)}, predicting '
        f"<code>{escape(card.target)}</code>; created "
        f"{escape(format_value(card.created_at))}</p>",
        _summary(card),
        "<h2>Intended use and limitations</h2>",
        _intended_use(card),
        "<h2>Data</h2>",
        _facts(card.data.items()) if card.data else "<p>No dataset facts were recorded.</p>",
        "<h2>Metrics on the test set</h2>",
        _metrics(card),
        "<h2>Comparison with the champion</h2>",
        _champion(card),
        "<h2>Metrics per slice</h2>",
        _slices(card),
        "<h2>Features and importance</h2>",
        _features(card),
        "<h2>Parameters</h2>",
        _params(card),
        "<h2>Lineage</h2>",
        _lineage(card.lineage),
        "<h2>Plots</h2>",
        _plots(card),
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(heading)}</title>\n<style>\n{_STYLE}\n</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _table(head: Iterable[str], rows: Iterable[Iterable[str]], css: str = "") -> str:
    """A table of already escaped cells; a cell starting with ``<td`` is taken as is."""
    header = "".join(f"<th>{cell}</th>" for cell in head)
    body = "".join(
        "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>"
        for row in rows
    )
    table = f"<table><tr>{header}</tr>{body}</table>" if header else f"<table>{body}</table>"
    return f'<div class="{css}">{table}</div>' if css else table


def _num(text: str) -> str:
    return f'<td class="n">{text}</td>'


def _facts(items: Iterable[tuple[str, Any]]) -> str:
    rows = [(f"<th>{escape(str(key))}</th>", _fact(value)) for key, value in items]
    return "<table>" + "".join(f"<tr>{k}<td>{v}</td></tr>" for k, v in rows) + "</table>"


def _fact(value: Any) -> str:
    if isinstance(value, Mapping) and value:
        return _facts(value.items())
    return escape(format_value(value))


def _summary(card: CardInputs) -> str:
    verdict, sentence = gate_verdict(card)
    css = {"passed": "pass", "failed": "fail"}.get(verdict, "none")
    headline = f"Gate {verdict}." if card.gate is not None else "Not gated."
    parts = [
        f'<div class="verdict {css}"><strong>{headline}</strong> {escape(sentence)}</div>',
        _facts(
            [
                ("Project", card.project),
                ("Model", card.model_name),
                ("Version", "unregistered" if card.version is None else card.version),
                ("Task", str(card.task)),
                ("Algorithm", card.algorithm),
                ("Target", card.target),
                ("Test rows", card.evaluation.rows),
                ("Created", card.created_at),
            ]
        ),
    ]
    if card.gate is not None and card.gate.checks:
        rows = [
            (
                f"<code>{escape(check.name)}</code>",
                '<td class="ok">passed</td>' if check.passed else '<td class="bad">failed</td>',
                escape(check.detail),
            )
            for check in card.gate.checks
        ]
        parts += ["<h3>Gate checks</h3>", _table(["Check", "Result", "Detail"], rows)]
    return "\n".join(parts)


def _intended_use(card: CardInputs) -> str:
    text, written = intended_use(card)
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in text.split("\n\n") if p.strip())
    if written:
        return paragraphs
    return paragraphs + f'<p class="prompt">{escape(LIMITATIONS_PROMPT)}</p>'


def _direction(direction: Direction) -> str:
    return "higher" if direction is Direction.maximize else "lower"


def _ci(value: MetricValue) -> str:
    if not value.samples:
        return '<span class="muted">-</span>'
    return f"[{format_number(value.low)}, {format_number(value.high)}]"


def _metrics(card: CardInputs) -> str:
    metrics = list(card.evaluation.metrics.values())
    if not metrics:
        return "<p>No metric was computed.</p>"
    confidence = f"{metrics[0].confidence:.0%}"
    rows = [
        (
            f"<code>{escape(m.name)}</code>",
            _num(format_number(m.value)),
            _num(_ci(m)),
            _direction(m.direction),
            _num(str(m.samples)),
        )
        for m in metrics
    ]
    head = ["Metric", "Value", f"{confidence} CI", "Better", "Resamples"]
    parts = [
        _table(head, rows),
        f'<p class="muted">{card.evaluation.rows:,} test rows; intervals are bootstrap '
        "percentile intervals over resamples of the test rows.</p>",
    ]
    skipped = skipped_metrics(card)
    if skipped:
        listed = "; ".join(f"{escape(k)}: {escape(v)}" for k, v in skipped.items())
        parts.append(f'<p class="muted">Not computed: {listed}.</p>')
    return "\n".join(parts)


def _champion(card: CardInputs) -> str:
    check = champion_check(card)
    if card.champion is None:
        text = "There is no champion to compare with"
        text += ": this model would be the first." if check is not None else "."
        return f"<p>{text}</p>"
    version = card.champion.get("version")
    parts = [
        f"<p>Champion <strong>v{escape(format_value(version))}</strong>, "
        "measured on the same test rows.</p>"
    ]
    if check is not None:
        result = (
            '<span class="ok">passed</span>' if check.passed else '<span class="bad">failed</span>'
        )
        parts.append(
            f"<p>Gate check <code>{escape(check.name)}</code> {result}: {escape(check.detail)}</p>"
        )
    verdicts = {True: '<td class="ok">better</td>', False: '<td class="bad">worse</td>'}
    rows = [
        (
            f"<code>{escape(row.name)}</code>",
            _num(format_number(row.value)),
            _num(format_number(row.champion)),
            _num(f"{row.change:+.3f}" if math.isfinite(row.change) else "nan"),
            "<td>same</td>" if row.better is None else verdicts[row.better],
        )
        for row in champion_rows(card)
    ]
    if rows:
        parts.append(_table(["Metric", "This model", "Champion", "Change", ""], rows))
    else:
        parts.append("<p>The champion has none of this model's metrics recorded.</p>")
    return "\n".join(parts)


def _slices(card: CardInputs) -> str:
    names, rows = slice_rows(card)
    skipped = skipped_slices(card)
    if not rows:
        text = "<p>No slices were evaluated.</p>"
        if skipped:
            text = f"<p>No slice had enough rows ({len(skipped)} skipped).</p>"
        return text
    cells = []
    for row in rows:
        line = [
            f"<code>{escape(row.column)}</code>",
            escape(row.value),
            _num(f"{row.rows:,}"),
            f'<td class="bad">worse: {escape(", ".join(sorted(row.flagged)))}</td>'
            if row.flagged
            else '<td class="ok">ok</td>',
        ]
        for name in names:
            value = row.metrics.get(name)
            if value is None:
                line.append('<td class="n muted">-</td>')
                continue
            css = "n bad" if name in row.flagged else "n"
            line.append(
                f'<td class="{css}">{format_number(value.value)}<br>'
                f'<span class="ci">{_ci(value)}</span></td>'
            )
        cells.append(line)
    head = ["Column", "Value", "Rows", "Flag", *(f"<code>{escape(n)}</code>" for n in names)]
    note = (
        f'<p class="muted">A slice is flagged when a metric is worse than on the whole test '
        f"set by more than {SLICE_TOLERANCE:.0%} of the overall value and its interval lies "
        "wholly on the worse side."
    )
    if skipped:
        note += f" {len(skipped)} slice value(s) had too few rows and are not shown."
    return _table(head, cells, "wide") + note + "</p>"


def _features(card: CardInputs) -> str:
    rows = feature_rows(card)
    if not rows:
        return "<p>No features were recorded.</p>"
    largest = max((share or 0.0 for _, _, share in rows), default=0.0)
    cells = []
    for name, kind, share in rows:
        line = [f"<code>{escape(name)}</code>", escape(kind)]
        if card.importance is not None:
            width = 0.0 if not share or largest <= 0 else 100.0 * share / largest
            line.append(_num("-" if share is None else f"{share:.1%}"))
            line.append(f'<div class="bar"><span style="width:{width:.1f}%"></span></div>')
        cells.append(line)
    head = ["Feature", "Kind"] + (["Importance", ""] if card.importance is not None else [])
    note = (
        '<p class="muted">Importance is the model\'s own measure (split gain for boosted '
        "trees, impurity decrease or absolute coefficients otherwise), summed per feature and "
        "shown as shares of the total.</p>"
        if card.importance is not None
        else '<p class="muted">This model does not expose feature importance.</p>'
    )
    return _table(head, cells) + note


def _params(card: CardInputs) -> str:
    rows = [
        (f"<code>{escape(name)}</code>", escape(format_value(value, exact=True)), escape(source))
        for name, value, source in param_rows(card)
    ]
    parts = [_table(["Parameter", "Value", "Source"], rows) if rows else "<p>Defaults only.</p>"]
    summary = tuning_summary(card)
    if card.tuned is None:
        parts.append('<p class="muted">The parameters were not tuned.</p>')
    elif summary:
        parts += ["<h3>Tuning</h3>", _facts(summary)]
    return "\n".join(parts)


def _lineage(lineage: Mapping[str, str]) -> str:
    if not lineage:
        return "<p>No lineage was recorded.</p>"
    rows = [(escape(label), f"<code>{escape(str(ref))}</code>") for label, ref in lineage.items()]
    return _table(["What", "Id or URI"], rows)


def _plots(card: CardInputs) -> str:
    plots = ordered_plots(card)
    if not plots:
        return "<p>No plots were made.</p>"
    figures = []
    for name, data in plots:
        mime = _MIME.get(name.rsplit(".", 1)[-1].lower(), "image/png")
        encoded = base64.b64encode(data).decode("ascii")
        caption = escape(plot_title(name))
        figures.append(
            f'<figure><img src="data:{mime};base64,{encoded}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    return "\n".join(figures)
