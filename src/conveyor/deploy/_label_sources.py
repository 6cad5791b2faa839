"""What the labels tell the controller: live quality for the guardrail, outcomes for A/B tests.

Both join the ingested ground truth with the prediction log (see
:mod:`conveyor.monitor._joined`) for the versions of a rollout: quality on the predictions
logged since the rollout began, A/B outcomes since its (only) step began. The controller asks
every tick (about once a second); :class:`Cached` reuses an answer for
:data:`QUALITY_EVERY_S` seconds, so the join runs a few times a minute at most.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    from conveyor.deploy._observe import OutcomeValue, QualityValue
    from conveyor.spec import Spec

__all__ = ["QUALITY_BOOTSTRAP", "QUALITY_EVERY_S", "Cached", "label_sources"]

logger = logging.getLogger(__name__)

QUALITY_BOOTSTRAP: Final = 100
"""Resamples behind the standard error of a rollout's live quality (the guardrail's noise)."""
QUALITY_EVERY_S: Final = 5.0
"""Seconds a rollout's live quality (labels joined with the log) is reused before re-reading."""


def label_sources(spec: Spec, artifacts_url: str) -> dict[str, Any]:
    """The :class:`~conveyor.deploy.Controller` options that read labels, for ``spec``.

    ``quality`` (and ``quality_higher_is_better``) when the spec monitors quality or has a
    ``quality_drop`` guardrail (then with the task's primary metric); ``outcomes`` for any A/B
    deployment, the spec's or one started with ``--policy ab`` (it reads nothing for other
    policies or for outcomes named by the user). None without a ``model:`` section.
    """
    model = spec.model
    if model is None:
        return {}
    from conveyor.monitor._outcomes import version_outcomes
    from conveyor.monitor._quality import version_quality
    from conveyor.spec import PRIMARY_METRIC, TASK_METRICS, Direction, QualitySpec

    options: dict[str, Any] = {}
    quality = spec.monitor.quality
    if quality is None and spec.rollout.guardrails.quality_drop is not None:
        quality = QualitySpec()  # the guardrail alone: the task's primary metric
    if quality is not None:
        metric = quality.metric or PRIMARY_METRIC[model.task]
        measure = partial(
            version_quality,
            artifacts_url,
            task=model.task,
            metric=metric,
            key=quality.key,
            min_labels=1,
            n_boot=QUALITY_BOOTSTRAP,
        )
        options["quality"] = partial(_live_quality, measure)
        options["quality_higher_is_better"] = TASK_METRICS[model.task][metric] == Direction.maximize
    key = None if spec.monitor.quality is None else spec.monitor.quality.key
    outcomes = partial(version_outcomes, artifacts_url, task=model.task, key=key)
    options["outcomes"] = partial(_label_outcomes, outcomes)
    return options


def _live_quality(
    measure: Callable[..., Mapping[tuple[int, bool], QualityValue]],
    versions: Sequence[int],
    since: datetime,
) -> Mapping[tuple[int, bool], QualityValue]:
    return measure(versions=list(versions), since=since)


def _label_outcomes(
    measure: Callable[..., Mapping[int, OutcomeValue]],
    versions: Sequence[int],
    since: datetime,
    metric: str,
) -> Mapping[int, OutcomeValue]:
    return measure(versions=list(versions), since=since, metric=metric)


_K = TypeVar("_K")
_V = TypeVar("_V")


class Cached(Generic[_K, _V]):
    """A labels-based source whose answer is reused for ``seconds`` per question.

    A question is ``(versions, since, *rest)``; a source failing with a
    :class:`~conveyor.errors.ConveyorError` (no log or labels yet) answers ``{}``.
    """

    def __init__(
        self, source: Callable[..., Mapping[_K, _V]], seconds: float, what: str = "live quality"
    ) -> None:
        self._source = source
        self._seconds = seconds
        self._what = what
        self._last: tuple[Any, float, Mapping[_K, _V]] = (None, 0.0, {})

    def __call__(self, versions: Sequence[int], since: datetime, *rest: Any) -> Mapping[_K, _V]:
        key = (tuple(versions), since, rest)
        last_key, at, value = self._last
        if key == last_key and time.monotonic() - at < self._seconds:
            return value
        try:
            value = self._source(versions, since, *rest)
        except ConveyorError as err:  # no log or labels yet: judge without them
            logger.debug("%s unavailable: %s", self._what, err)
            value = {}
        self._last = (key, time.monotonic(), value)
        return value
