"""The model card: standalone, escaped HTML and Markdown showing what reviewers rely on."""

from __future__ import annotations

import base64
import dataclasses
import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from conveyor.spec import ChampionComparison, GateSpec, Task
from conveyor.train.evaluation import Evaluation, check_gates, evaluate
from conveyor.train.evaluation._results import format_number
from conveyor.train.report import (
    CardInputs,
    evaluation_plots,
    feature_importance,
    render_model_card_html,
    render_model_card_markdown,
)
from conveyor.train.report._card import DEFAULT_INTENDED_USE, LIMITATIONS_PROMPT

from .conftest import Holdout, cancer_schema, noisy_site

EVIL = '<script>alert("owned")</script>'


@pytest.fixture(scope="module")
def card(
    cancer_lightgbm: Holdout, cancer_logistic: Holdout, cancer_evaluation: Evaluation
) -> CardInputs:
    """A LightGBM card whose gate fails a bound, compared with a logistic champion."""
    h = cancer_lightgbm
    labels, _ = noisy_site(h)
    champion = evaluate(
        Task.binary_classification,
        labels,
        y_score=cancer_logistic.score,
        classes=cancer_logistic.classes,
        n_bootstrap=50,
    )
    gate = GateSpec(
        min={"roc_auc": 0.999},
        max={"log_loss": 5.0},
        vs_champion=ChampionComparison(metric="roc_auc", max_regression=0.5),
    )
    return CardInputs(
        project=f"flights {EVIL}",
        model_name="malignancy",
        version=4,
        algorithm=h.model.algorithm,
        task=Task.binary_classification,
        target="diagnosis",
        features=cancer_schema(),
        params={"n_estimators": 40, "learning_rate": 0.1},
        tuned={"best_params": {"num_leaves": 15}, "n_trials": 20, "metric": "roc_auc"},
        evaluation=cancer_evaluation,
        gate=check_gates(gate, cancer_evaluation, champion),
        champion={"version": 3, "metrics": {k: v.to_json() for k, v in champion.metrics.items()}},
        data={
            "dataset version": "ds-7f3a",
            "rows": {"train": 341, "test": 228},
            "class balance": {"benign": 0.627, "malignant": 0.373},
        },
        lineage={
            "MLflow run": "https://mlflow.example.com/#/experiments/1/runs/abc",
            "spec sha256": "9f86d081884c7d659a2feaa0c55ad015",
        },
        intended_use=f"Triage support only.\n\n{EVIL} & not for diagnosis.",
        importance=feature_importance(h.model),
        plots=evaluation_plots(
            Task.binary_classification,
            labels,
            y_pred=None,
            y_score=h.score,
            classes=h.classes,
        ),
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


class _Tags(HTMLParser):
    """Checks that every opened element is closed in order (void elements excepted)."""

    VOID = frozenset({"meta", "br", "img", "hr", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.errors.append(tag)


def _row(html: str, cell: str) -> str:
    """The table row holding a cell with exactly this text."""
    match = re.search(rf"<tr>(?:(?!</tr>).)*<td>{re.escape(cell)}</td>.*?</tr>", html)
    assert match is not None, cell
    return match.group(0)


def test_html_is_standalone_and_well_formed(card: CardInputs) -> None:
    html = render_model_card_html(card)
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert "<script" not in html.lower()
    parser = _Tags()
    parser.feed(html)
    assert parser.errors == [] and parser.open == []


def test_html_escapes_caller_text(card: CardInputs) -> None:
    html = render_model_card_html(card)
    escaped = "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;"
    assert f"flights {escaped}" in html  # title and summary
    assert f"{escaped} &amp; not for diagnosis." in html
    # A URI in the lineage is shown as text, never as a link the page would follow.
    assert "<code>https://mlflow.example.com/#/experiments/1/runs/abc</code>" in html


def test_html_embeds_every_plot(card: CardInputs) -> None:
    html = render_model_card_html(card)
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert sorted(base64.b64decode(data) for data in embedded) == sorted(card.plots.values())
    assert len(embedded) == 4


def test_html_shows_metrics_with_intervals(card: CardInputs) -> None:
    html = render_model_card_html(card)
    assert "95% CI" in html
    for metric in card.evaluation.metrics.values():
        assert f"[{format_number(metric.low)}, {format_number(metric.high)}]" in html
        assert format_number(metric.value) in html


def test_html_shows_the_failed_gate_checks(card: CardInputs) -> None:
    assert card.gate is not None and not card.gate.passed
    html = render_model_card_html(card)
    assert '<div class="verdict fail"><strong>Gate failed.</strong>' in html
    (failed,) = card.gate.failed
    assert failed.name == "min.roc_auc"
    assert (
        f'<td><code>min.roc_auc</code></td><td class="bad">failed</td><td>{failed.detail}</td>'
        in html
    )
    assert '<td><code>max.log_loss</code></td><td class="ok">passed</td>' in html


def test_html_compares_with_the_champion(card: CardInputs) -> None:
    html = render_model_card_html(card)
    assert "Champion <strong>v3</strong>" in html
    assert 'Gate check <code>vs_champion.roc_auc</code> <span class="ok">passed</span>' in html
    assert card.champion is not None
    theirs = card.champion["metrics"]["roc_auc"]["value"]
    ours = card.evaluation.metrics["roc_auc"].value
    assert (
        f'<tr><td><code>roc_auc</code></td><td class="n">{format_number(ours)}</td>'
        f'<td class="n">{format_number(theirs)}</td><td class="n">{ours - theirs:+.3f}</td>'
        f'<td class="{"ok" if ours > theirs else "bad"}">{"better" if ours > theirs else "worse"}'
    ) in html


def test_html_flags_the_slice_that_is_much_worse(card: CardInputs) -> None:
    html = render_model_card_html(card)
    south, north = _row(html, "south"), _row(html, "north")
    assert '<td class="bad">worse: ' in south
    assert '<td class="ok">ok</td>' in north
    auc = card.evaluation.slices["site"]["south"]["roc_auc"]
    assert not isinstance(auc, int)
    assert f'<td class="n bad">{format_number(auc.value)}<br>' in south
    assert f"[{format_number(auc.low)}, {format_number(auc.high)}]" in south
    assert "<code>size band</code>" in html


def test_html_shows_importance_params_and_lineage(card: CardInputs) -> None:
    html = render_model_card_html(card)
    assert card.importance is not None
    top = next(iter(card.importance))
    assert re.search(rf"<code>{re.escape(top)}</code>.*?width:100\.0%", html), (
        "the most important feature has the full bar"
    )
    assert "<td><code>num_leaves</code></td><td>15</td><td>tuned</td>" in html
    assert "<td><code>n_estimators</code></td><td>40</td><td>spec</td>" in html
    assert "<td><code>learning_rate</code></td><td>0.1</td><td>spec</td>" in html  # as written
    assert "<th>n_trials</th><td>20</td>" in html
    assert "9f86d081884c7d659a2feaa0c55ad015" in html
    assert "<th>train</th><td>341</td>" in html  # nested data facts


def test_empty_intended_use_asks_for_limitations(card: CardInputs) -> None:
    blank = dataclasses.replace(card, intended_use="  ", gate=None, champion=None)
    html = render_model_card_html(blank)
    assert DEFAULT_INTENDED_USE in html and LIMITATIONS_PROMPT in html
    assert "Not gated." in html and "There is no champion to compare with." in html
    markdown = render_model_card_markdown(blank)
    assert DEFAULT_INTENDED_USE in markdown and f"> {LIMITATIONS_PROMPT}" in markdown
    assert LIMITATIONS_PROMPT not in render_model_card_html(card)


def test_markdown_has_the_metrics_table_and_plot_files(card: CardInputs) -> None:
    markdown = render_model_card_markdown(card)
    assert "| Metric | Value | 95% CI | Better | Resamples |" in markdown
    auc = card.evaluation.metrics["roc_auc"]
    ci = f"[{format_number(auc.low)}, {format_number(auc.high)}]"
    assert f"| `roc_auc` | {format_number(auc.value)} | {ci} | higher |" in markdown
    for name in card.plots:
        assert f"]({name})" in markdown
    assert "![Confusion matrix](confusion_matrix.png)" in markdown
    assert "data:image" not in markdown


def test_markdown_escapes_and_flags(card: CardInputs) -> None:
    markdown = render_model_card_markdown(card)
    assert "<script" not in markdown
    assert "&lt;script&gt;" in markdown
    (south,) = [line for line in markdown.splitlines() if line.startswith("| `site` | south |")]
    assert "| **worse:** " in south
    assert "| `min.roc_auc` | **failed** |" in markdown
    assert "**Gate failed.**" in markdown
