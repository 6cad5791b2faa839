"""Where a project's rollout stands: weights, per-version statistics, guardrails, history.

:func:`rollout_report` gathers what ``conveyor rollout status`` shows, from the store alone:
the newest deployment, each version's serving statistics over the current step, every
guardrail against its limit, what the controller would decide now (the same pure
:func:`~conveyor.deploy.decide`), the latest events, and which controller holds the lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from conveyor.deploy._apply import controller_lease
from conveyor.deploy._guardrails import GuardrailCheck, check_guardrails
from conveyor.deploy._observe import observe, recorded_policy, step_count
from conveyor.deploy._policy import decide
from conveyor.deploy._state import Decision, RolloutPolicy
from conveyor.deploy._transitions import json_metrics, utcnow

if TYPE_CHECKING:
    from conveyor.store import DeploymentEvent, DeploymentRecord, MetadataStore

__all__ = ["RolloutReport", "VersionRow", "rollout_report"]


@dataclass(frozen=True)
class VersionRow:
    """One version's part in a deployment and what it served during the current step.

    Attributes:
        version: The model version.
        role: ``champion``, ``challenger`` or ``shadow`` (mirrored requests only).
        weight: Percent of callers' requests it answers (0 for a shadow row).
        requests: Requests served (mirrored, for a shadow row).
        errors: Failed requests.
        error_rate: ``errors / requests``, or None without requests.
        p95_ms: 95th-percentile latency, or None.
        p99_ms: 99th-percentile latency, or None.
        agreement: Shadow only: share of compared predictions equal to the champion's.
        compared: Shadow only: predictions compared with the champion's.
        outcomes: A/B: outcomes reported for the version's answers.
        outcome_mean: A/B: their mean (the success rate of 0/1 outcomes), or None.
    """

    version: int
    role: str
    weight: float
    requests: int = 0
    errors: int = 0
    error_rate: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    agreement: float | None = None
    compared: int = 0
    outcomes: int = 0
    outcome_mean: float | None = None


@dataclass(frozen=True)
class RolloutReport:
    """A deployment as ``conveyor rollout status`` shows it.

    Attributes:
        deployment: The project's newest deployment.
        policy: Its rollout policy (None for a ``direct`` deployment).
        steps: How many steps the rollout has.
        rows: Per version: weight and statistics since ``since``.
        checks: Every guardrail judged on the challenger (empty without a rollout).
        next: What the controller would decide now (None once the rollout is over).
        events: The latest events, oldest first.
        controller: Who holds the controller lease, or None when no controller runs.
        since: Start of the statistics (the current step's start).
    """

    deployment: DeploymentRecord
    policy: RolloutPolicy | None
    steps: int
    rows: tuple[VersionRow, ...]
    checks: tuple[GuardrailCheck, ...]
    next: Decision | None
    events: tuple[DeploymentEvent, ...]
    controller: str | None
    since: datetime

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (``conveyor rollout status --json``)."""
        record = self.deployment
        return json_metrics(
            {
                "deployment": {
                    "id": record.id,
                    "project": record.project,
                    "policy": str(record.policy),
                    "state": str(record.state),
                    "step": record.step,
                    "steps": self.steps,
                    "champion": record.champion_version,
                    "challenger": record.challenger_version,
                    "weights": {str(v): w for v, w in sorted(record.weights.items())},
                    "shadow_version": record.shadow_version,
                    "shadow_rate": record.shadow_rate,
                    "step_started_at": _iso(record.step_started_at),
                    "created_at": _iso(record.created_at),
                    "updated_at": _iso(record.updated_at),
                    "actor": record.actor,
                    "reason": record.reason,
                },
                "since": _iso(self.since),
                "versions": [row.__dict__ for row in self.rows],
                "guardrails": [check.__dict__ for check in self.checks],
                "next": None
                if self.next is None
                else {"action": self.next.action, "reason": self.next.reason},
                "controller": self.controller,
                "events": [
                    {
                        "at": _iso(e.at),
                        "kind": e.kind,
                        "actor": e.actor,
                        "reason": e.reason,
                        "to_state": str(e.to_state),
                        "weights": {str(v): w for v, w in sorted(e.weights.items())},
                        "metrics": e.metrics,
                    }
                    for e in self.events
                ],
            }
        )


def rollout_report(
    store: MetadataStore,
    project: str,
    *,
    fallback: RolloutPolicy | None = None,
    now: datetime | None = None,
    events: int = 8,
) -> RolloutReport | None:
    """The project's newest deployment and how its rollout stands, or None if it has none.

    Args:
        store: The metadata store.
        project: The project's name.
        fallback: The spec's rollout policy, for deployments whose own cannot be read.
        now: The time to judge at (default: now).
        events: How many of the latest events to include.
    """
    record = store.latest_deployment(project)
    if record is None:
        return None
    history = tuple(store.list_deployment_events(record.id)[-events:]) if events > 0 else ()
    controller = store.lease_holder(controller_lease(project))
    since = record.step_started_at or record.created_at
    if record.challenger_version is None or str(record.policy) == "direct":
        direct = tuple(
            VersionRow(version, _role(record, version), weight)
            for version, weight in sorted(record.weights.items())
        )
        return RolloutReport(record, None, 1, direct, (), None, history, controller, since)
    policy = recorded_policy(record, fallback)
    seen = observe(store, record, now=now or utcnow(), fallback=fallback)
    checks = check_guardrails(policy.guardrails, seen.champion, seen.challenger)
    upcoming = decide(seen.state, seen.champion, seen.challenger) if record.state.active else None
    rows: list[VersionRow] = []
    for (version, mirrored), summary in seen.summaries.items():
        rows.append(
            VersionRow(
                version=version,
                role="shadow" if mirrored else _role(record, version),
                weight=0.0 if mirrored else record.weights.get(version, 0.0),
                requests=summary.requests,
                errors=summary.errors,
                error_rate=summary.error_rate,
                p95_ms=summary.latency_p95_ms,
                p99_ms=summary.latency_p99_ms,
                agreement=summary.agreement_rate if mirrored else None,
                compared=summary.compared if mirrored else 0,
                outcomes=summary.outcome_n,
                outcome_mean=summary.outcome_mean,
            )
        )
    served = {(row.version, row.role == "shadow") for row in rows}
    for version, weight in record.weights.items():  # versions without traffic yet
        if (version, False) not in served:
            rows.append(VersionRow(version, _role(record, version), weight))
    rows.sort(key=lambda row: (row.version != record.champion_version, row.role == "shadow"))
    return RolloutReport(
        deployment=record,
        policy=policy,
        steps=step_count(policy),
        rows=tuple(rows),
        checks=checks,
        next=upcoming,
        events=history,
        controller=controller,
        since=since,
    )


def _role(record: DeploymentRecord, version: int) -> str:
    return "champion" if version == record.champion_version else "challenger"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
