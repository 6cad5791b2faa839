"""The model card as Markdown, with the plots as image files next to it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

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

__all__ = ["render_model_card_markdown"]


def render_model_card_markdown(card: CardInputs) -> str:
    """The model card as GitHub-flavoured Markdown.

    The same sections as :func:`render_model_card_html`; plots are referenced by their file
    names (``![Confusion matrix](confusion_matrix.png)``), so write ``card.plots`` into the
    folder of the Markdown file. Text from the caller is escaped so it cannot add HTML or
    break a table.
    """
    verdict, sentence = gate_verdict(card)
    text, written = intended_use(card)
    lines = [
        f"# Model card: {_text(title(card))}",
        "",
        f"**Gate {verdict}.** {_text(sentence)}" if card.gate else f"**Not gated.** {sentence}",
        "",
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
        *_gate_checks(card),
        "## Intended use and limitations",
        "",
        escape(text, quote=False),
        "",
        *([] if written else [f"> {LIMITATIONS_PROMPT}", ""]),
        "## Data",
        "",
        _facts(card.data.items()) if card.data else "No dataset facts were recorded.\n",
        "## Metrics on the test set",
        "",
        *_metrics(card),
        "## Comparison with the champion",
        "",
        *_champion(card),
        "## Metrics per slice",
        "",
        *_slices(card),
        "## Features and importance",
        "",
        *_features(card),
        "## Parameters",
        "",
        *_params(card),
        "## Lineage",
        "",
        _table(
            ["What", "Id or URI"],
            [(_cell(label), _code(ref)) for label, ref in card.lineage.items()],
        )
        if card.lineage
        else "No lineage was recorded.\n",
        "## Plots",
        "",
        *(f"![{_cell(plot_title(name))}]({quote(name)})\n" for name, _ in ordered_plots(card)),
    ]
    if not card.plots:
        lines.append("No plots were made.\n")
    return "\n".join(lines).rstrip() + "\n"


def _text(value: Any) -> str:
    """Caller text for running prose: no HTML, no line breaks."""
    return escape(" ".join(str(value).split()), quote=False)


def _cell(value: Any) -> str:
    """Caller text for a table cell: as :func:`_text`, and ``|`` cannot end the cell."""
    return _text(value).replace("|", "\\|")


def _code(value: Any) -> str:
    text = " ".join(str(value).split()).replace("`", "'").replace("|", "\\|")
    return f"`{text}`"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _facts(items: Iterable[tuple[str, Any]]) -> str:
    return _table(["", ""], [(f"**{_cell(key)}**", _cell(format_value(v))) for key, v in items])


def _gate_checks(card: CardInputs) -> list[str]:
    if card.gate is None or not card.gate.checks:
        return []
    rows = [
        (_code(check.name), "passed" if check.passed else "**failed**", _cell(check.detail))
        for check in card.gate.checks
    ]
    return ["### Gate checks", "", _table(["Check", "Result", "Detail"], rows)]


def _ci(value: MetricValue) -> str:
    return f"[{format_number(value.low)}, {format_number(value.high)}]" if value.samples else "-"


def _metrics(card: CardInputs) -> list[str]:
    metrics = list(card.evaluation.metrics.values())
    if not metrics:
        return ["No metric was computed.", ""]
    better = {Direction.maximize: "higher", Direction.minimize: "lower"}
    rows = [
        (_code(m.name), format_number(m.value), _ci(m), better[m.direction], str(m.samples))
        for m in metrics
    ]
    head = ["Metric", "Value", f"{metrics[0].confidence:.0%} CI", "Better", "Resamples"]
    lines = [
        _table(head, rows),
        f"{card.evaluation.rows:,} test rows; intervals are bootstrap percentile intervals "
        "over resamples of the test rows.",
        "",
    ]
    skipped = skipped_metrics(card)
    if skipped:
        listed = "; ".join(f"{_text(k)}: {_text(v)}" for k, v in skipped.items())
        lines += [f"Not computed: {listed}.", ""]
    return lines


def _champion(card: CardInputs) -> list[str]:
    check = champion_check(card)
    if card.champion is None:
        first = ": this model would be the first." if check is not None else "."
        return [f"There is no champion to compare with{first}", ""]
    lines = [
        f"Champion **v{_text(format_value(card.champion.get('version')))}**, measured on the "
        "same test rows.",
        "",
    ]
    if check is not None:
        result = "passed" if check.passed else "**failed**"
        lines += [f"Gate check {_code(check.name)} {result}: {_text(check.detail)}", ""]
    verdicts = {True: "better", False: "**worse**", None: "same"}
    rows = [
        (
            _code(row.name),
            format_number(row.value),
            format_number(row.champion),
            f"{row.change:+.3f}" if math.isfinite(row.change) else "nan",
            verdicts[row.better],
        )
        for row in champion_rows(card)
    ]
    if rows:
        lines.append(_table(["Metric", "This model", "Champion", "Change", ""], rows))
    else:
        lines += ["The champion has none of this model's metrics recorded.", ""]
    return lines


def _slices(card: CardInputs) -> list[str]:
    names, rows = slice_rows(card)
    skipped = skipped_slices(card)
    if not rows:
        if skipped:
            return [f"No slice had enough rows ({len(skipped)} skipped).", ""]
        return ["No slices were evaluated.", ""]
    cells = []
    for row in rows:
        line = [_code(row.column), _cell(row.value), f"{row.rows:,}"]
        line.append(f"**worse:** {', '.join(sorted(row.flagged))}" if row.flagged else "ok")
        for name in names:
            value = row.metrics.get(name)
            if value is None:
                line.append("-")
            elif name in row.flagged:
                line.append(f"**{format_number(value.value)}** {_ci(value)}")
            else:
                line.append(f"{format_number(value.value)} {_ci(value)}")
        cells.append(line)
    note = (
        f"A slice is flagged when a metric is worse than on the whole test set by more than "
        f"{SLICE_TOLERANCE:.0%} of the overall value and its interval lies wholly on the "
        "worse side."
    )
    if skipped:
        note += f" {len(skipped)} slice value(s) had too few rows and are not shown."
    return [_table(["Column", "Value", "Rows", "Flag", *map(_code, names)], cells), note, ""]


def _features(card: CardInputs) -> list[str]:
    rows = feature_rows(card)
    if not rows:
        return ["No features were recorded.", ""]
    if card.importance is None:
        table = _table(["Feature", "Kind"], [(_code(n), _cell(k)) for n, k, _ in rows])
        return [table, "This model does not expose feature importance.", ""]
    cells = [
        (_code(name), _cell(kind), "-" if share is None else f"{share:.1%}")
        for name, kind, share in rows
    ]
    return [_table(["Feature", "Kind", "Importance"], cells)]


def _params(card: CardInputs) -> list[str]:
    rows = [
        (_code(name), _cell(format_value(value, exact=True)), source)
        for name, value, source in param_rows(card)
    ]
    lines = [_table(["Parameter", "Value", "Source"], rows) if rows else "Defaults only.\n"]
    summary = tuning_summary(card)
    if card.tuned is None:
        lines += ["The parameters were not tuned.", ""]
    elif summary:
        lines += ["### Tuning", "", _facts(summary)]
    return lines
