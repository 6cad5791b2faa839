"""What a worker counts for the rollout controller: requests, errors, latencies, scores, outcomes.

The worker's event loop records into plain lists (a list append per request); every couple of
seconds the app drains them into :class:`StatsDelta` objects (numpy arrays, cheap to pickle)
that the server's parent process buckets and adds to the metadata store's ``serving_stats``
(see :mod:`conveyor.serving._follower`), where the controller reads every replica's sums.
Kept apart: answers returned to callers and shadow predictions (``shadow=True``). Outcomes
(an A/B test's metric, reported by clients through ``POST /outcomes`` for the version that
answered them) are summed as count, sum and sum of squares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from conveyor.serving.runtimes import Prediction

__all__ = ["StatsDelta", "StatsRecorder", "scores_of"]


@dataclass(frozen=True)
class StatsDelta:
    """One version's counts since the previous drain.

    Attributes:
        version: The model version.
        shadow: Whether these are shadow predictions.
        requests: Requests answered (or shadowed).
        errors: Of those, the ones answered with a 5xx status (or a failed shadow call).
        latencies_ms: One latency per request.
        scores: One score per predicted row (the positive class's probability, or the
            highest probability for several classes); empty for regressors.
        compared, agreed, abs_diff_sum: Shadow rows compared with the answered version's rows,
            those predicting the same label, and the summed absolute score difference.
        outcome_n, outcome_sum, outcome_sum_sq: Outcomes reported for the version's answers,
            their sum and the sum of their squares.
    """

    version: int
    shadow: bool
    requests: int
    errors: int
    latencies_ms: np.ndarray[Any, Any]
    scores: np.ndarray[Any, Any]
    compared: int = 0
    agreed: int = 0
    abs_diff_sum: float = 0.0
    outcome_n: int = 0
    outcome_sum: float = 0.0
    outcome_sum_sq: float = 0.0


@dataclass
class _Counts:
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    scores: list[np.ndarray[Any, Any]] = field(default_factory=list)
    compared: int = 0
    agreed: int = 0
    abs_diff_sum: float = 0.0
    outcome_n: int = 0
    outcome_sum: float = 0.0
    outcome_sum_sq: float = 0.0


class StatsRecorder:
    """Counts per (version, shadow); used from the event loop thread only (no lock)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[int, bool], _Counts] = {}

    def _get(self, version: int, shadow: bool) -> _Counts:
        counts = self._counts.get((version, shadow))
        if counts is None:
            counts = self._counts[version, shadow] = _Counts()
        return counts

    def request(self, version: int, status: int, seconds: float, *, shadow: bool = False) -> None:
        """One request answered by ``version`` with ``status`` after ``seconds``."""
        counts = self._get(version, shadow)
        counts.requests += 1
        if status >= 500:
            counts.errors += 1
        counts.latencies.append(seconds * 1000.0)

    def scores(self, version: int, prediction: Prediction, *, shadow: bool) -> None:
        """The scores of one prediction (nothing for a regressor)."""
        scores = scores_of(prediction)
        if scores is not None:
            self._get(version, shadow).scores.append(scores)

    def compare(self, version: int, answered: Prediction, shadow: Prediction) -> None:
        """Compare shadow ``version``'s prediction with the answer returned for the same rows."""
        import numpy as np

        counts = self._get(version, True)
        counts.compared += len(shadow.labels)
        counts.agreed += int(np.count_nonzero(shadow.labels == answered.labels))
        a, b = scores_of(answered), scores_of(shadow)
        if a is not None and b is not None:
            counts.abs_diff_sum += float(np.abs(a - b).sum())
        elif a is None and b is None:  # regression: compare the predicted values
            diff = shadow.labels.astype(np.float64) - answered.labels.astype(np.float64)
            counts.abs_diff_sum += float(np.abs(diff).sum())

    def outcome(self, version: int, value: float) -> None:
        """One outcome (a finite number; 0/1 for a proportion) of a request ``version`` answered."""
        counts = self._get(version, False)
        counts.outcome_n += 1
        counts.outcome_sum += value
        counts.outcome_sum_sq += value * value

    def drain(self) -> list[StatsDelta]:
        """Everything counted since the last drain; the counts start again from zero."""
        import numpy as np

        counts, self._counts = self._counts, {}
        return [
            StatsDelta(
                version=version,
                shadow=shadow,
                requests=c.requests,
                errors=c.errors,
                latencies_ms=np.asarray(c.latencies, dtype=np.float32),
                scores=(
                    np.concatenate(c.scores).astype(np.float32)
                    if c.scores
                    else np.empty(0, np.float32)
                ),
                compared=c.compared,
                agreed=c.agreed,
                abs_diff_sum=c.abs_diff_sum,
                outcome_n=c.outcome_n,
                outcome_sum=c.outcome_sum,
                outcome_sum_sq=c.outcome_sum_sq,
            )
            for (version, shadow), c in counts.items()
        ]


def scores_of(prediction: Prediction) -> np.ndarray[Any, Any] | None:
    """One score per row: P(positive class) for two classes, the top probability for more."""
    probabilities = prediction.probabilities
    if probabilities is None or probabilities.ndim != 2 or probabilities.shape[1] < 2:
        return None
    scores: np.ndarray[Any, Any] = (
        probabilities[:, 1] if probabilities.shape[1] == 2 else probabilities.max(axis=1)
    )
    return scores
