"""The rollout controller's Deployment: ``conveyor controller`` in a single pod."""

from __future__ import annotations

from typing import Any, Final

from conveyor.deploy.k8s._options import Plan
from conveyor.deploy.k8s._pod import COMMAND, metadata, pod_template, selector

__all__ = ["CONTROLLER", "LEADER_NOTE", "controller_deployment"]

CONTROLLER: Final = "controller"

LEADER_NOTE: Final = """\
Leader election is Conveyor's own: a controller acts only while it holds the lease in the
metadata database (CONVEYOR_DB_URL), so it needs no Kubernetes RBAC. One replica is enough
(the Recreate strategy lets the old pod stop before the new one starts); more replicas are
safe, and only the lease holder acts. A replacement resumes every rollout from the state
recorded in the database."""


def controller_deployment(
    plan: Plan, env: list[dict[str, Any]], spec_sha256: str
) -> dict[str, Any]:
    """One replica of ``conveyor controller``: the same image, spec and Secret as the server."""
    container = {
        "name": CONTROLLER,
        "image": plan.image,
        "command": list(COMMAND),
        "args": [CONTROLLER],
        "env": env,
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"memory": "512Mi"},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(plan, f"{plan.name}-{CONTROLLER}", CONTROLLER),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector(plan, CONTROLLER)},
            "strategy": {"type": "Recreate"},
            "template": pod_template(
                plan, CONTROLLER, container, spec_sha256=spec_sha256, grace_seconds=30
            ),
        },
    }
