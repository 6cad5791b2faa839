"""Deployment: how new model versions take traffic, and how Conveyor runs on Kubernetes.

``conveyor.deploy.k8s`` renders the Kubernetes manifests and the Dockerfile.

The rollout logic is plain objects, testable without servers or a database:

>>> router = Router(TrafficPlan({4: 95.0, 5: 5.0}, salt="deployment-7"))
>>> router.route("user-42").version  # the same key gets the same version on every replica
4
>>> decision = decide(state, champion_stats, challenger_stats)  # doctest: +SKIP
>>> decision.action, decision.reason  # doctest: +SKIP
('advance', 'canary step 1/4 (5%) held 61 s and 812 requests: ... → advancing to 25%')

:class:`TrafficPlan`/:class:`Router` choose the version per request (sticky by key through
consistent hashing, shadow sampling); :func:`decide` is the controller's pure decision function
over a :class:`RolloutState` and both versions' :class:`VersionStats`; the statistical tests
behind A/B rollouts and guardrails live beside them.

Around that brain, the parts that act on the metadata store and MLflow:

>>> start_deployment(store, registry, "churn", rollout, reason="AUC", actor="me")  # doctest: +SKIP
>>> Controller.from_spec(store, spec, tracking_uri=uri).run(stop_event)  # doctest: +SKIP

:func:`start_deployment` records a deployment at its first step (or, ``direct``, switches at
once); :class:`Controller` takes the project's lease and applies :func:`decide` to the active
rollout every second; people pause, resume, promote, abort or roll back with a reason that lands
in the deployment's history and the audit log; :func:`rollout_report` is what ``conveyor rollout
status`` shows.
"""

from conveyor.deploy._actions import (
    abort_rollout,
    active_rollout,
    pause_rollout,
    promote_rollout,
    resume_rollout,
    rollback_deployment,
)
from conveyor.deploy._alerts import rollback_webhooks
from conveyor.deploy._apply import CONTROLLER_ACTOR
from conveyor.deploy._controller import Controller, TickResult
from conveyor.deploy._errors import RolloutError
from conveyor.deploy._experiments import MIN_OUTCOMES, planned_sample_size
from conveyor.deploy._guardrails import GuardrailCheck, VersionStats, check_guardrails
from conveyor.deploy._policy import decide
from conveyor.deploy._routing import BUCKETS, RouteDecision, Router, TrafficPlan
from conveyor.deploy._start import start_deployment
from conveyor.deploy._state import (
    TERMINAL_STATES,
    Action,
    Decision,
    RolloutPolicy,
    RolloutState,
    RolloutStatus,
)
from conveyor.deploy._stats import (
    SampleSummary,
    TestResult,
    Verdict,
    psi,
    required_sample_size,
    required_sample_size_means,
    sequential_test,
    two_proportion_test,
    welch_test,
)
from conveyor.deploy._status import RolloutReport, VersionRow, rollout_report
from conveyor.deploy._synthetic import SyntheticCheck, SyntheticResult, run_synthetic_requests

__all__ = [
    "BUCKETS",
    "CONTROLLER_ACTOR",
    "MIN_OUTCOMES",
    "TERMINAL_STATES",
    "Action",
    "Controller",
    "Decision",
    "GuardrailCheck",
    "RolloutError",
    "RolloutPolicy",
    "RolloutReport",
    "RolloutState",
    "RolloutStatus",
    "RouteDecision",
    "Router",
    "SampleSummary",
    "SyntheticCheck",
    "SyntheticResult",
    "TestResult",
    "TickResult",
    "TrafficPlan",
    "Verdict",
    "VersionRow",
    "VersionStats",
    "abort_rollout",
    "active_rollout",
    "check_guardrails",
    "decide",
    "pause_rollout",
    "planned_sample_size",
    "promote_rollout",
    "psi",
    "required_sample_size",
    "required_sample_size_means",
    "resume_rollout",
    "rollback_deployment",
    "rollback_webhooks",
    "rollout_report",
    "run_synthetic_requests",
    "sequential_test",
    "start_deployment",
    "two_proportion_test",
    "welch_test",
]
