"""What the server's and the controller's objects share: names, labels, the pod around a container.

Both run the same image with the project in ``/app``. The spec comes from a ConfigMap mounted
over ``/app/conveyor.yaml`` (the rest of the project, e.g. ``steps.py``, is in the image), and
``/app/.conveyor`` (the model cache) is an ``emptyDir``: local state never outlives a pod, the
shared state is in the database and the artifact store named by the Secret.
"""

from __future__ import annotations

from typing import Any, Final

from conveyor.deploy.k8s._options import Plan

__all__ = [
    "APP_DIR",
    "COMMAND",
    "SPEC_KEY",
    "UID",
    "configmap_name",
    "labels",
    "metadata",
    "pod_template",
    "selector",
]

APP_DIR: Final = "/app"
SPEC_KEY: Final = "conveyor.yaml"
COMMAND: Final = ("conveyor", "--project", APP_DIR)
UID: Final = 10001  # the image's non-root user (see the Dockerfile)
SPEC_SHA256_ANNOTATION: Final = "conveyor/spec-sha256"


def configmap_name(plan: Plan) -> str:
    """The ConfigMap holding the spec."""
    return f"{plan.name}-spec"


def selector(plan: Plan, component: str | None) -> dict[str, str]:
    """The labels that select one component's pods (never changed once applied)."""
    chosen = {"app.kubernetes.io/name": plan.name}
    if component is not None:
        chosen["app.kubernetes.io/component"] = component
    return chosen


def labels(plan: Plan, component: str | None) -> dict[str, str]:
    """Every label of an object: its selector labels and the recommended descriptive ones."""
    return {
        **selector(plan, component),
        "app.kubernetes.io/part-of": "conveyor",
        "app.kubernetes.io/managed-by": "conveyor",
    }


def metadata(plan: Plan, name: str, component: str | None) -> dict[str, Any]:
    """An object's ``metadata``: name, namespace when one was chosen, labels."""
    meta: dict[str, Any] = {"name": name}
    if plan.namespace is not None:
        meta["namespace"] = plan.namespace
    meta["labels"] = labels(plan, component)
    return meta


def pod_template(
    plan: Plan,
    component: str,
    container: dict[str, Any],
    *,
    spec_sha256: str,
    grace_seconds: int,
    annotations: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Deployment's pod template running ``container`` with the spec and state mounted.

    The spec's hash is an annotation, so applying a changed spec replaces the pods (a file
    mounted with ``subPath`` is not refreshed in running pods).
    """
    full = {
        **container,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {
                "name": "spec",
                "mountPath": f"{APP_DIR}/{SPEC_KEY}",
                "subPath": SPEC_KEY,
                "readOnly": True,
            },
            {"name": "state", "mountPath": f"{APP_DIR}/.conveyor"},
        ],
    }
    return {
        "metadata": {
            "labels": labels(plan, component),
            "annotations": {SPEC_SHA256_ANNOTATION: spec_sha256, **(annotations or {})},
        },
        "spec": {
            # Neither the server nor the controller talks to the Kubernetes API.
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": grace_seconds,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": UID,
                "runAsGroup": UID,
                "fsGroup": UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            **(extra or {}),
            "containers": [full],
            "volumes": [
                {"name": "spec", "configMap": {"name": configmap_name(plan)}},
                {"name": "state", "emptyDir": {}},
            ],
        },
    }
