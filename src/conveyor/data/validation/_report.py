"""The validation report as one standalone HTML page: no external assets, no script."""

from __future__ import annotations

from html import escape
from typing import Any

from conveyor.data.validation._results import CheckResult, ValidationResult

__all__ = ["render_report_html"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#1f2328;max-width:72em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border-bottom:1px solid #d0d7de;padding:3px 10px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{padding:.8em 1em;border-radius:6px;font-size:1.1em;margin-bottom:1.5em}
.pass{background:#dafbe1;border:1px solid #1a7f37}
.fail{background:#ffebe9;border:1px solid #cf222e}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}
.null{color:#8c959f;font-style:italic}
.samples{overflow-x:auto}
""".strip()

_BAR_HEIGHT = 22
_LABEL_WIDTH = 220
_BAR_WIDTH = 420


def render_report_html(result: ValidationResult, *, title: str) -> str:
    """A readable standalone HTML page for ``result``.

    It shows the verdict, the counts, the policy applied, a bar chart of failing rows per
    check, every check with its outcome, and sample bad rows per failing check.
    """
    verdict = "passed" if result.passed else "failed"
    sections = [
        f"<h1>{escape(title)}</h1>",
        f'<div class="verdict {"pass" if result.passed else "fail"}">'
        f"<strong>Validation {verdict}.</strong> {escape(result.summary())}</div>",
        "<h2>Rows</h2>",
        _counts(result),
        "<h2>Policy</h2>",
        _policy(result),
        "<h2>Failing rows per check</h2>",
        _chart(result.checks),
        "<h2>Checks</h2>",
        _checks(result.checks),
        "<h2>Samples</h2>",
        _samples(result.failed_checks),
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>\n{_STYLE}\n</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _counts(result: ValidationResult) -> str:
    rows = [
        ("Input rows", f"{result.rows:,}"),
        ("Clean rows", f"{result.clean_rows:,}"),
        ("Quarantined rows", f"{result.quarantined_rows:,}"),
        ("Quarantined share", f"{result.quarantine_fraction:.2%}"),
    ]
    cells = "".join(f'<tr><th>{name}</th><td class="n">{value}</td></tr>' for name, value in rows)
    return f"<table>{cells}</table>"


def _policy(result: ValidationResult) -> str:
    if result.on_failure == "fail":
        rule = "Any failing row fails the validation (<code>on_failure: fail</code>)."
    else:
        rule = (
            "Failing rows are quarantined with a reason each (<code>on_failure: quarantine"
            "</code>); the validation fails if more than "
            f"{result.max_quarantine_fraction:.2%} of the rows are quarantined "
            "(<code>max_quarantine_fraction</code>)."
        )
    return f"<p>{rule} Any failing table check fails the validation.</p>"


def _chart(checks: list[CheckResult]) -> str:
    failing = [check for check in checks if check.kind == "row" and check.failed]
    if not failing:
        return "<p>No row failed a check.</p>"
    largest = max(check.failed for check in failing)
    height = _BAR_HEIGHT * len(failing)
    width = _LABEL_WIDTH + _BAR_WIDTH + 90
    parts = []
    for index, check in enumerate(failing):
        y = index * _BAR_HEIGHT
        bar = max(1, round(_BAR_WIDTH * check.failed / largest))
        parts.append(
            f'<text x="{_LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end" font-size="12">'
            f"{escape(check.name)}</text>"
            f'<rect x="{_LABEL_WIDTH}" y="{y + 3}" width="{bar}" height="{_BAR_HEIGHT - 6}" '
            'fill="#cf222e"></rect>'
            f'<text x="{_LABEL_WIDTH + bar + 6}" y="{y + 15}" font-size="12">'
            f"{check.failed:,}</text>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="failing rows per check">{"".join(parts)}</svg>'
    )


def _checks(checks: list[CheckResult]) -> str:
    head = "<tr><th>Check</th><th>Kind</th><th>Failed</th><th>Result</th><th>Detail</th></tr>"
    rows = [
        f"<tr><td>{escape(check.name)}</td><td>{check.kind}</td>"
        f'<td class="n">{check.failed:,}</td>'
        + (
            '<td class="ok">passed</td>'
            if check.passed
            else f'<td class="bad"><a href="#{_anchor(check)}">failed</a></td>'
        )
        + f"<td>{escape(check.detail)}</td></tr>"
        for check in checks
    ]
    return f"<table>{head}{''.join(rows)}</table>"


def _anchor(check: CheckResult) -> str:
    return "check-" + "".join(c if c.isalnum() else "-" for c in check.name)


def _samples(failed: list[CheckResult]) -> str:
    if not failed:
        return "<p>Nothing failed.</p>"
    parts = []
    for check in failed:
        parts.append(f'<h3 id="{_anchor(check)}">{escape(check.name)}</h3>')
        parts.append(f"<p>{escape(check.detail)}</p>")
        if check.samples:
            parts.append(f'<div class="samples">{_sample_table(check.samples)}</div>')
    return "\n".join(parts)


def _sample_table(samples: list[dict[str, Any]]) -> str:
    keys: dict[str, None] = {}
    for sample in samples:
        keys.update(dict.fromkeys(sample))
    head = "".join(f"<th>{escape(key)}</th>" for key in keys)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(sample.get(key))}</td>" for key in keys) + "</tr>"
        for sample in samples
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _cell(value: Any) -> str:
    if value is None:
        return '<span class="null">null</span>'
    text = str(value)
    return escape(text if len(text) <= 80 else text[:77] + "...")
