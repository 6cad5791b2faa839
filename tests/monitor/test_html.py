"""The HTML report: self-contained, every column listed, histograms and the history plotted."""

from __future__ import annotations

import base64
import dataclasses
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from conveyor.monitor import DriftReport, compute_drift

PNG = b"\x89PNG\r\n\x1a\n"


def report(shift: float = 1.0) -> DriftReport:
    rng = np.random.default_rng(4)
    n = 3_000
    ref = pa.table(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 1, n),
            "city <b>": rng.choice(["oslo", "lima", "köln"], n).tolist(),
        }
    )
    cur = pa.table(
        {
            "age": rng.normal(40 + 10 * shift, 10, n),
            "income": rng.lognormal(10, 1, n),
            "city <b>": rng.choice(["oslo", "lima", "東京" if shift else "köln"], n).tolist(),
        }
    )
    return compute_drift(ref, cur)


def images(html: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def test_the_page_is_self_contained_with_a_histogram_per_column(tmp_path: Path) -> None:
    drift = report()

    path = drift.render_html(tmp_path / "reports" / "drift.html")

    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "Drift detected" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    pictures = images(html)
    assert len(pictures) == 3
    assert all(p.startswith(PNG) and len(p) > 2_000 for p in pictures)
    # drifted columns come first, in the table and in the plots
    assert html.index("<td>age") < html.index("<td>income")
    assert html.index('alt="age: psi') < html.index('alt="income: psi')
    # names from the data are escaped
    assert "city &lt;b&gt;" in html and "city <b>" not in html


def test_top_limits_the_histograms_and_history_adds_the_plots_over_time(tmp_path: Path) -> None:
    now = report(shift=1.0)
    past = [
        dataclasses.replace(report(shift=s), created_at=now.created_at - timedelta(days=d))
        for d, s in ((3, 0.0), (2, 0.2), (1, 0.5))
    ]

    html = now.render_html(tmp_path / "drift.html", history=past, top=1).read_text()

    assert "Drift over time" in html
    assert "Weighted share of drifted columns per report" in html
    assert len(images(html)) == 2 + 1
    assert "the 1 most drifted columns" in html


def test_no_drift_reads_as_such(tmp_path: Path) -> None:
    html = report(shift=0.0).render_html(tmp_path / "d.html").read_text()
    assert "No dataset drift" in html
