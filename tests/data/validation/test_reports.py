"""The reports: JSON for machines, a summary line for errors, a standalone HTML page for people."""

from __future__ import annotations

import json
import math
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

from conveyor.data.validation import render_report_html

SCHEMA = {
    "columns": {
        "carrier": {"type": "str", "allowed": ["AA", "UA"]},
        "distance": {"type": "int", "min": 1, "max": 6000},
        "temp": {"type": "float", "nullable": True},
    },
    "checks": {"min_rows": 1000},
    "max_quarantine_fraction": 0.5,
}


def _dirty(write):
    return write(
        {
            "carrier": ["AA", "<b>ZZ</b>", "UA", "AA", "XX"],
            "distance": [100, 200, 7000, 0, 50],
            "temp": [1.5, math.nan, None, 2.0, 3.0],
            "when": [datetime(2024, 1, i + 1) for i in range(5)],
        }
    )


def test_summary_names_failures_with_numbers(write, validate) -> None:
    result = validate(_dirty(write), SCHEMA)
    assert result.summary() == (
        "4 of 5 rows (80.00%) broke the schema (more than the 50.00% allowed): "
        "carrier.allowed 2, distance.min 1, distance.max 1; "
        "table.min_rows failed: 5 rows, fewer than the minimum 1,000"
    )
    tolerated = validate(
        write({"n": [1] * 999 + [-1]}), {"columns": {"n": {"type": "int", "min": 0}}}
    )
    assert tolerated.summary() == "1 of 1,000 rows (0.10%) broke the schema: n.min 1"
    fine = validate(write({"n": [1, 2]}), {"columns": {"n": {"type": "int"}}})
    assert fine.summary() == "all 2 rows passed 3 checks"


def test_json_report_round_trips_as_standard_json(write, validate) -> None:
    result = validate(_dirty(write), SCHEMA)
    report = result.to_json()
    text = json.dumps(report, allow_nan=False)  # NaN and dates in samples are made safe
    assert json.loads(text) == report
    assert report["passed"] is False
    assert (report["rows"], report["clean_rows"], report["quarantined_rows"]) == (5, 1, 4)
    assert report["policy"] == {"on_failure": "quarantine", "max_quarantine_fraction": 0.5}
    assert report["quarantine_path"] == str(result.quarantine_path)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["carrier.allowed"]["samples"][0] == {
        "_row": 1,
        "carrier": "<b>ZZ</b>",
        "distance": 200,
        "temp": "nan",
        "when": "2024-01-02T00:00:00",
    }
    assert checks["table.min_rows"] == {
        "name": "table.min_rows",
        "column": None,
        "kind": "table",
        "failed": 1,
        "passed": False,
        "detail": "5 rows, fewer than the minimum 1,000",
        "samples": [],
    }


class StrictHTML(HTMLParser):
    """Records tags and fails on any element closed out of order or left open."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.seen: list[str] = []
        self.text: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> StrictHTML:
    parser = StrictHTML()
    parser.feed(page)
    parser.close()
    assert parser.stack == [] and parser.doctype.lower() == "doctype html"
    return parser


def test_html_report_is_standalone_and_shows_checks_samples_and_policy(write, validate) -> None:
    result = validate(_dirty(write), SCHEMA)
    page = render_report_html(result, title="flights <script>alert(1)</script>")
    parsed = _parse(page)
    text = " ".join(parsed.text)
    assert "script" not in parsed.seen and "flights <script>alert(1)</script>" in text
    assert "b" not in parsed.seen and "<b>ZZ</b>" in text  # data is escaped, never markup
    standalone = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http" not in standalone and "src=" not in standalone and "<link" not in standalone
    for name in ("carrier.allowed", "distance.min", "distance.max", "table.min_rows"):
        assert name in text
    assert "Validation failed." in text
    assert "XX" in text and "7000" in text  # sample bad rows
    assert "max_quarantine_fraction" in text and "50.00%" in text
    assert parsed.seen.count("rect") == 3  # one bar per failing row check
    assert "svg" in parsed.seen and "table" in parsed.seen


def test_html_report_of_a_clean_table(write, validate) -> None:
    result = validate(
        write({"n": [1, 2]}), {"columns": {"n": {"type": "int"}}, "on_failure": "fail"}
    )
    parsed = _parse(render_report_html(result, title="clean"))
    text = " ".join(parsed.text)
    assert "Validation passed." in text and "No row failed a check." in text
    assert "on_failure: fail" in text and "rect" not in parsed.seen


def test_progress_is_reported_after_each_batch(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from conveyor.data.validation import validate_snapshot
    from conveyor.spec import SchemaSpec

    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"x": list(range(25))}), path)
    seen: list[tuple[int, int]] = []
    validate_snapshot(
        path,
        SchemaSpec(),
        workdir=tmp_path / "w",
        batch_rows=10,
        progress=lambda *a: seen.append(a),
    )
    assert seen == [(10, 25), (20, 25), (25, 25)]
