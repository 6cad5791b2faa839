"""Monitoring alerts: the spec's ``monitor.alerts`` rules judged against what was observed.

:func:`evaluate_alerts` takes the newest observations (:class:`AlertObservation`: the latest
drift run, the live quality against the champion's holdout value, the serving error rate and
p99 latency) and, for each rule on ``drift``, ``quality_drop``, ``error_rate`` or
``latency``:

* condition holds → :meth:`~conveyor.store.MetadataStore.raise_alert`; the webhook is called
  only when the store says so (a new alert, or ``renotify_after`` since the last message), so
  any number of evaluations, loops or replicas send one message;
* condition cleared → :meth:`~conveyor.store.MetadataStore.resolve_alert`, and one "resolved"
  message when the rule has ``send_resolved`` and the alert was firing;
* condition unknown (no drift run yet, no labels, no traffic) → nothing changes.

A rule's id is a short hash of its event, threshold and webhook: editing one of those makes a
new rule (with its own alert), while ``renotify_after`` and ``send_resolved`` can change
freely. The message is Slack-compatible (``{"text": ...}``) with machine-readable fields
beside it. A webhook that fails is logged and reported in the outcome, never raised; the
alert stays recorded in the store either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from conveyor.digests import digest_json
from conveyor.webhooks import post_json

if TYPE_CHECKING:
    from conveyor.spec import AlertSpec
    from conveyor.store import AlertRecord, MetadataStore, MonitorRunRecord

__all__ = [
    "MIN_REQUESTS",
    "MONITORED_EVENTS",
    "AlertObservation",
    "AlertOutcome",
    "QualityObservation",
    "ServingObservation",
    "evaluate_alerts",
    "rule_id",
    "serving_observation",
]

logger = logging.getLogger(__name__)

MONITORED_EVENTS: Final = frozenset({"drift", "quality_drop", "error_rate", "latency"})
"""Events that are conditions judged here (the others are sent where they happen)."""

MIN_REQUESTS: Final = 20
"""Fewest requests in the window for an error rate to be judged (one failure in two is noise)."""

Post = Callable[[str, Mapping[str, Any]], "str | None"]


@dataclass(frozen=True)
class QualityObservation:
    """The live quality of the served model next to the value it had on the holdout set.

    Attributes:
        metric: The metric's name (``roc_auc``, ``rmse``...).
        value: Its value on the labelled live predictions, or None (no labels yet).
        baseline: The champion's holdout value (registry tag ``metric.<name>``), or None.
        model_version: The version judged.
        higher_is_better: False for errors (``rmse``, ``log_loss``): a drop is then a rise.
    """

    metric: str
    value: float | None
    baseline: float | None
    model_version: int | None = None
    higher_is_better: bool = True

    @property
    def drop(self) -> float | None:
        """How much worse than the baseline the live value is (negative: better), or None."""
        if self.value is None or self.baseline is None:
            return None
        change = self.baseline - self.value
        return change if self.higher_is_better else -change


@dataclass(frozen=True)
class ServingObservation:
    """What the replicas counted since ``since`` (see :func:`serving_observation`).

    Attributes:
        since: Start of the window.
        requests: Requests answered.
        error_rate: Share of failed requests, or None (fewer than ``MIN_REQUESTS``).
        latency_p99_ms: Estimated p99 latency, or None without observations.
        model_version: The version counted, when one.
    """

    since: datetime
    requests: int
    error_rate: float | None
    latency_p99_ms: float | None
    model_version: int | None = None


@dataclass(frozen=True)
class AlertObservation:
    """The newest facts the rules are judged on; a part left None cannot be judged.

    Attributes:
        project: The project.
        now: The time of the evaluation (aware).
        drift: The latest drift monitoring run.
        quality: The live quality against its baseline.
        serving: Error rate and latency of the recent traffic.
        recent_drift: The newest drift runs, newest first (``drift`` among them): a drift
            alert resolves only when the newest ``clear_after`` of them are clear.
    """

    project: str
    now: datetime
    drift: MonitorRunRecord | None = None
    quality: QualityObservation | None = None
    serving: ServingObservation | None = None
    recent_drift: tuple[MonitorRunRecord, ...] = ()


@dataclass(frozen=True)
class AlertOutcome:
    """What one evaluation did with one rule.

    Attributes:
        rule: The rule's id.
        event: Its event.
        state: ``firing`` or ``resolved``.
        notified: Whether a message was sent (or tried) to the webhook.
        failed: Why the webhook failed, when it did.
        alert: The alert as stored.
    """

    rule: str
    event: str
    state: str
    notified: bool
    failed: str | None
    alert: AlertRecord


@dataclass(frozen=True)
class _Verdict:
    firing: bool
    subject: str
    value: float | None
    threshold: float | None
    model_version: int | None
    summary: str
    details: dict[str, Any]


def rule_id(rule: AlertSpec) -> str:
    """The rule's stable id: 12 hex digits of the hash of its event, threshold and webhook."""
    return digest_json([str(rule.on), rule.threshold, rule.webhook])[:12]


def evaluate_alerts(
    store: MetadataStore,
    project: str,
    rules: Sequence[AlertSpec],
    observation: AlertObservation,
    *,
    post: Post = post_json,
) -> list[AlertOutcome]:
    """Judge every monitoring rule; record, deduplicate and send the alerts.

    Args:
        store: The metadata store holding the alerts.
        project: The project.
        rules: The spec's ``monitor.alerts`` (rules on other events are skipped).
        observation: What was observed (parts left None change nothing).
        post: Sends one JSON body to a URL; returns None on success, else why it failed.

    Returns:
        One outcome per rule whose alert was raised or resolved.
    """
    outcomes = []
    for rule in rules:
        if str(rule.on) not in MONITORED_EVENTS:
            continue
        verdict = _judge(rule, observation)
        if verdict is None:
            continue
        rule_key = rule_id(rule)
        payload = _payload(project, rule, verdict, observation.now)
        if verdict.firing:
            alert, notify = store.raise_alert(
                project,
                rule_key,
                str(rule.on),
                verdict.subject,
                payload,
                renotify_after=rule.renotify_after,
                now=observation.now,
            )
        else:
            if not _cleared(rule, observation):
                continue
            resolved = store.resolve_alert(project, rule_key, verdict.subject, now=observation.now)
            if resolved is None:
                continue
            alert, notify = resolved, rule.send_resolved
        failed = _send(post, rule.webhook, payload) if notify else None
        outcomes.append(AlertOutcome(rule_key, str(rule.on), alert.state, notify, failed, alert))
    return outcomes


def _cleared(rule: AlertSpec, seen: AlertObservation) -> bool:
    """Whether a condition that does not hold now has been clear long enough to resolve.

    A drift rule needs its newest ``clear_after`` windows clear (the current one included);
    with fewer windows known than that (``recent_drift`` not given), the current one decides.
    Other rules resolve as soon as their condition clears.
    """
    if str(rule.on) != "drift" or not seen.recent_drift:
        return True
    newest = seen.recent_drift[: rule.clear_after]
    if len(newest) < rule.clear_after:
        return False
    for run in newest:
        verdict = _drift(rule.threshold, run)
        if verdict is None or verdict.firing:
            return False
    return True


def serving_observation(
    store: MetadataStore,
    project: str,
    since: datetime,
    version: int | None = None,
    *,
    min_requests: int = MIN_REQUESTS,
) -> ServingObservation:
    """Error rate and p99 latency of the answered (not shadow) requests since ``since``.

    Args:
        store: The metadata store holding the serving statistics.
        project: The project.
        since: Start of the window (aware); e.g. ``now - 15 minutes``.
        version: Only this model version (default: every version served).
        min_requests: Fewest requests for the error rate to be judged.
    """
    from conveyor.store import latency_quantile

    summaries = store.serving_stats_summary(
        project, since=since, versions=None if version is None else [version]
    )
    served = [s for (_, shadow), s in summaries.items() if not shadow]
    requests = sum(s.requests for s in served)
    errors = sum(s.errors for s in served)
    latency: list[int] = []
    for summary in served:
        counts = summary.latency_counts
        latency = [a + b for a, b in zip(latency, counts, strict=True)] if latency else counts
    versions = {s.model_version for s in served}
    if version is None and len(versions) == 1:
        version = versions.pop()
    return ServingObservation(
        since=since,
        requests=requests,
        error_rate=errors / requests if requests >= max(min_requests, 1) else None,
        latency_p99_ms=latency_quantile(latency, 0.99) if latency else None,
        model_version=version,
    )


def _judge(rule: AlertSpec, seen: AlertObservation) -> _Verdict | None:
    event = str(rule.on)
    if event == "drift":
        return _drift(rule.threshold, seen.drift)
    if event == "quality_drop":
        return _quality(rule.threshold, seen.quality)
    serving = seen.serving
    if serving is None:
        return None
    window = {"since": serving.since.isoformat(), "requests": serving.requests}
    threshold = rule.threshold
    if event == "error_rate":
        value = serving.error_rate
        if value is None or threshold is None:
            return None
        text = f"error rate {value:.2%} (threshold {threshold:.2%}, {serving.requests:,} requests)"
    else:
        value = serving.latency_p99_ms
        if value is None or threshold is None:
            return None
        text = f"p99 latency {value:.1f} ms (threshold {threshold:g} ms)"
    return _Verdict(
        value >= threshold, "model", value, threshold, serving.model_version, text, window
    )


def _drift(threshold: float | None, run: MonitorRunRecord | None) -> _Verdict | None:
    if run is None:
        return None
    share = run.score if run.score is not None else run.summary.get("drifted_share")
    if threshold is None:
        firing = run.flagged
    elif isinstance(share, int | float):
        firing = share >= threshold
    else:
        return None
    columns = run.summary.get("columns")
    drifted = (
        sorted(name for name, c in columns.items() if isinstance(c, dict) and c.get("drifted"))
        if isinstance(columns, dict)
        else []
    )
    value = float(share) if isinstance(share, int | float) else None
    text = "data drift" if firing else "no data drift"
    if value is not None:
        text += f": drifted share {value:.0%}"
        if threshold is not None:
            text += f" (threshold {threshold:.0%})"
    if drifted:
        shown = ", ".join(drifted[:5]) + (
            f" and {len(drifted) - 5} more" if len(drifted) > 5 else ""
        )
        text += f"; drifted columns: {shown}"
    details = {"monitor_run": run.id, "rows": run.rows, "drifted_columns": drifted}
    if run.window_end is not None:
        details["window_end"] = run.window_end.isoformat()
    return _Verdict(firing, "dataset", value, threshold, run.model_version, text, details)


def _quality(threshold: float | None, quality: QualityObservation | None) -> _Verdict | None:
    if quality is None or threshold is None or quality.drop is None:
        return None
    drop = quality.drop
    text = (
        f"{quality.metric} {quality.value:.4g} against {quality.baseline:.4g} on the holdout set "
        f"(drop {drop:.4g}, threshold {threshold:g})"
    )
    details = {"metric": quality.metric, "live": quality.value, "baseline": quality.baseline}
    return _Verdict(
        drop >= threshold, "model", drop, threshold, quality.model_version, text, details
    )


_TITLES: Final = {
    "drift": "data drift",
    "quality_drop": "quality drop",
    "error_rate": "error rate",
    "latency": "latency",
}


def _payload(project: str, rule: AlertSpec, verdict: _Verdict, at: datetime) -> dict[str, Any]:
    event = str(rule.on)
    version = f" v{verdict.model_version}" if verdict.model_version is not None else ""
    if verdict.firing:
        head = f":warning: Conveyor {_TITLES[event]} alert for {project}{version}"
    else:
        head = f":white_check_mark: Conveyor {_TITLES[event]} resolved for {project}{version}"
    return {
        "text": f"{head}: {verdict.summary}",
        "event": event,
        "project": project,
        "state": "firing" if verdict.firing else "resolved",
        "rule": rule_id(rule),
        "subject": verdict.subject,
        "value": verdict.value,
        "threshold": verdict.threshold,
        "model_version": verdict.model_version,
        "details": verdict.details,
        "at": at.isoformat(),
    }


def _send(post: Post, url: str, payload: Mapping[str, Any]) -> str | None:
    try:
        return post(url, payload)
    except Exception as err:  # a broken sender must not stop the monitoring loop
        logger.exception("sending a %s alert failed", payload.get("event"))
        return f"{type(err).__name__}: {err}"
