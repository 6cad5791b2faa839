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
"""

from conveyor.deploy._experiments import MIN_OUTCOMES, planned_sample_size
from conveyor.deploy._guardrails import GuardrailCheck, VersionStats, check_guardrails
from conveyor.deploy._policy import decide
from conveyor.deploy._routing import BUCKETS, RouteDecision, Router, TrafficPlan
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

__all__ = [
    "BUCKETS",
    "MIN_OUTCOMES",
    "TERMINAL_STATES",
    "Action",
    "Decision",
    "GuardrailCheck",
    "RolloutPolicy",
    "RolloutState",
    "RolloutStatus",
    "RouteDecision",
    "Router",
    "SampleSummary",
    "TestResult",
    "TrafficPlan",
    "Verdict",
    "VersionStats",
    "check_guardrails",
    "decide",
    "planned_sample_size",
    "psi",
    "required_sample_size",
    "required_sample_size_means",
    "sequential_test",
    "two_proportion_test",
    "welch_test",
]
