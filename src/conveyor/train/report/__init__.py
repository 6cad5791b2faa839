"""The model card (HTML and Markdown) with its evaluation plots and feature importance.

>>> plots = evaluation_plots(task, y_test, y_pred=pred, y_score=proba)  # doctest: +SKIP
>>> card = CardInputs(project="flights", ..., plots=plots)              # doctest: +SKIP
>>> Path("model_card.html").write_text(render_model_card_html(card))    # doctest: +SKIP

The HTML card is one standalone page (plots embedded, no script, no external assets); the
Markdown card refers to the plots as files next to it. matplotlib, numpy and scikit-learn are
imported by the functions that use them.
"""

from conveyor.train.report._card import CardInputs
from conveyor.train.report._html import render_model_card_html
from conveyor.train.report._importance import feature_importance
from conveyor.train.report._markdown import render_model_card_markdown
from conveyor.train.report._plots import evaluation_plots

__all__ = [
    "CardInputs",
    "evaluation_plots",
    "feature_importance",
    "render_model_card_html",
    "render_model_card_markdown",
]
