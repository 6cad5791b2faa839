"""The serving tier: Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget."""

from __future__ import annotations

from typing import Any, Final

from conveyor.deploy.k8s._options import Plan
from conveyor.deploy.k8s._pod import COMMAND, metadata, pod_template, selector

__all__ = [
    "PRESTOP_SECONDS",
    "RPS_METRIC",
    "RPS_RULE",
    "SERVER",
    "server_deployment",
    "server_hpa",
    "server_pdb",
    "server_service",
]

SERVER: Final = "server"

#: Seconds a stopping pod keeps serving before it gets SIGTERM, so that every node has removed
#: it from the Service's endpoints by then and no new request reaches a closing server.
PRESTOP_SECONDS: Final = 10
#: How long ``conveyor serve`` may take to stop after SIGTERM: its workers wait up to 30 s
#: (``ServerConfig.graceful_seconds``) for requests in flight, the parent 15 s more for them.
_SERVER_STOP_SECONDS: Final = 30 + 15

#: Requests per second per pod, as prometheus-adapter exposes it from the server's counter.
RPS_METRIC: Final = "conveyor_requests_per_second"
_PREDICTION_ENDPOINTS: Final = ("predict", "v2_infer", "invocations")  # probes are not load
RPS_RULE: Final = f"""\
Requests per second per pod is the custom metric {RPS_METRIC}, which
prometheus-adapter makes from the server's counter conveyor_requests_total (scraped from
/metrics thanks to the prometheus.io/* pod annotations) with this rule in its configuration:

  rules:
  - seriesQuery: 'conveyor_requests_total{{namespace!="",pod!=""}}'
    resources:
      overrides:
        namespace: {{resource: namespace}}
        pod: {{resource: pod}}
    name:
      matches: ^conveyor_requests_total$
      as: {RPS_METRIC}
    metricsQuery: >-
      sum(rate(<<.Series>>{{<<.LabelMatchers>>,endpoint=~"{"|".join(_PREDICTION_ENDPOINTS)}"}}[2m]))
      by (<<.GroupBy>>)

Without prometheus-adapter the autoscaler scales on CPU only (and does not scale down while
a metric is missing): render with --target-rps 0 to leave this metric out."""


def server_deployment(plan: Plan, env: list[dict[str, Any]], spec_sha256: str) -> dict[str, Any]:
    """The server's Deployment: probes on its endpoints, graceful drain, no downtime on update."""
    http = {"port": "http", "scheme": "HTTP"}
    container = {
        "name": SERVER,
        "image": plan.image,
        "command": list(COMMAND),
        "args": [
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(plan.port),
            "--workers",
            str(plan.workers),
        ],
        "ports": [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}],
        "env": env,
        # No CPU limit: a throttled server answers late; the request reserves the cores.
        "resources": {
            "requests": {"cpu": plan.cpu, "memory": plan.memory},
            "limits": {"memory": plan.memory},
        },
        # Loading (and first downloading) the models may take minutes: until /healthz first
        # answers, liveness is not checked.
        "startupProbe": {
            "httpGet": {**http, "path": "/healthz"},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 120,
        },
        "livenessProbe": {
            "httpGet": {**http, "path": "/healthz"},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        # 200 only once every model is loaded and warmed up.
        "readinessProbe": {
            "httpGet": {**http, "path": "/readyz"},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SECONDS)]}}},
    }
    spread = {
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector(plan, SERVER)},
            }
        ]
    }
    scrape = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(plan.port),
        "prometheus.io/path": "/metrics",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(plan, f"{plan.name}-{SERVER}", SERVER),
        "spec": {
            "replicas": plan.replicas,
            "selector": {"matchLabels": selector(plan, SERVER)},
            # A new pod must be ready before an old one goes: capacity never drops.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": pod_template(
                plan,
                SERVER,
                container,
                spec_sha256=spec_sha256,
                grace_seconds=PRESTOP_SECONDS + _SERVER_STOP_SECONDS + 5,
                annotations=scrape,
                extra=spread,
            ),
        },
    }


def server_service(plan: Plan) -> dict[str, Any]:
    """The server's Service: a stable in-cluster address on the spec's port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(plan, f"{plan.name}-{SERVER}", SERVER),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(plan, SERVER),
            "ports": [{"name": "http", "port": plan.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def server_hpa(plan: Plan) -> dict[str, Any]:
    """The server's autoscaler: on CPU, and on requests per second per pod (see RPS_RULE)."""
    metrics: list[dict[str, Any]] = [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": plan.target_cpu},
            },
        }
    ]
    if plan.target_rps > 0:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": RPS_METRIC},
                    "target": {"type": "AverageValue", "averageValue": _quantity(plan.target_rps)},
                },
            }
        )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(plan, f"{plan.name}-{SERVER}", SERVER),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": f"{plan.name}-{SERVER}",
            },
            "minReplicas": plan.min_replicas,
            "maxReplicas": plan.max_replicas,
            "metrics": metrics,
            # Scale down slowly: a new pod pays for loading its models.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def server_pdb(plan: Plan) -> dict[str, Any]:
    """The server's disruption budget: drains and upgrades evict one pod at a time.

    ``maxUnavailable: 1`` rather than ``minAvailable: 1``: it never blocks a node drain (even
    with one replica) and never lets a drain take most of a large fleet at once.
    """
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(plan, f"{plan.name}-{SERVER}", SERVER),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(plan, SERVER)}},
    }


def _quantity(value: float) -> str:
    """A Kubernetes quantity for ``value``: ``"100"``, or ``"12500m"`` for 12.5."""
    if value == int(value):
        return str(int(value))
    return f"{round(value * 1000)}m"
