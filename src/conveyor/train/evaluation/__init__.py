"""Model evaluation with bootstrap confidence intervals, and quality gates.

>>> evaluation = evaluate(Task.binary_classification, y_test, y_score=proba)  # doctest: +SKIP
>>> evaluation.metric("roc_auc").describe()                                   # doctest: +SKIP
'roc_auc 0.994 [0.985, 0.999]'
>>> check_gates(spec.gate, evaluation, champion_evaluation).summary()         # doctest: +SKIP
'passed all 2 gate checks'

Intervals come from resampling the holdout rows; the resamples of all metrics are drawn as
count matrices and reduced with numpy, so 100k rows x 200 resamples take seconds. numpy and
scikit-learn are imported by the functions that use them.
"""

from conveyor.train.evaluation._evaluate import compare_paired, evaluate
from conveyor.train.evaluation._gates import NO_CHAMPION, GateCheck, GateResult, check_gates
from conveyor.train.evaluation._measures import ECE_BINS, EXTRA_METRICS, known_metrics
from conveyor.train.evaluation._results import Evaluation, MetricValue

__all__ = [
    "ECE_BINS",
    "EXTRA_METRICS",
    "NO_CHAMPION",
    "Evaluation",
    "GateCheck",
    "GateResult",
    "MetricValue",
    "check_gates",
    "compare_paired",
    "evaluate",
    "known_metrics",
]
