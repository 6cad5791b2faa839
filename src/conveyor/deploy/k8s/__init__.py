"""Kubernetes manifests and a Dockerfile for a project (``conveyor k8s render``).

Usage::

    options = K8sOptions(image="registry.example.com/flights:1.0", namespace="ml")
    rendering = render_manifests(loaded_spec, project_root, options, out_dir=out)
    write_files(rendering.files, out)  # refuses to overwrite files edited by hand

The serving tier is a Deployment of ``conveyor serve`` (probes on ``/healthz`` and ``/readyz``,
graceful drain), a Service, a HorizontalPodAutoscaler on CPU and on requests per second, and a
PodDisruptionBudget; the rollout controller is a one-replica Deployment of ``conveyor
controller``, which elects its leader through a database lease. Both read the spec from a
ConfigMap and the backend URLs from a Secret (never inline). Objects are plain dicts dumped
with PyYAML's safe dumper, so the output is stable and parseable.
"""

from conveyor.deploy.k8s._env import SecretKey
from conveyor.deploy.k8s._files import RenderedFile, WriteStatus, write_files
from conveyor.deploy.k8s._options import K8sOptions, Plan
from conveyor.deploy.k8s._render import Rendering, render_manifests, secret_command

__all__ = [
    "K8sOptions",
    "Plan",
    "RenderedFile",
    "Rendering",
    "SecretKey",
    "WriteStatus",
    "render_manifests",
    "secret_command",
    "write_files",
]
