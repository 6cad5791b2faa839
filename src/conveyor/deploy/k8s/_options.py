"""What ``conveyor k8s render`` may be told, checked and completed from the spec."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from conveyor.errors import SettingsError

if TYPE_CHECKING:
    from conveyor.spec import Spec

__all__ = ["K8sOptions", "Plan", "plan_for"]

# Kubernetes' own rules: Service names are DNS-1035 labels (start with a letter), namespaces
# DNS-1123 labels, Secret names DNS-1123 subdomains; CPU and memory are resource quantities.
_DNS1035_LABEL: Final = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1123_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_CPU: Final = re.compile(r"(\d+m|\d+(\.\d{1,3})?)")
_MEMORY: Final = re.compile(r"\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")
_LONGEST_SUFFIX: Final = "-controller"  # the longest suffix added to the name of an object


@dataclass(frozen=True)
class K8sOptions:
    """Choices for the rendered manifests; ``None`` means "derive it from the spec".

    Attributes:
        image: The container image (default ``<name>:latest``).
        namespace: Namespace of every object (default: none, so kubectl's current one).
        name: Prefix of every object's name (default: the spec's ``name``, ``_`` as ``-``).
        secret: The Secret holding the backend URLs (default ``<name>-conveyor``).
        replicas: Server replicas before the autoscaler acts (default: ``min_replicas``).
        min_replicas: Fewest server replicas the autoscaler keeps.
        max_replicas: Most server replicas the autoscaler starts.
        target_cpu: The autoscaler's CPU target, in percent of the CPU request.
        target_rps: The autoscaler's target of requests per second per replica; 0 leaves
            this metric out (for clusters without prometheus-adapter).
        cpu: CPU request of a server replica (default: workers x model threads).
        memory: Memory request and limit of a server replica (default: 512Mi + 512Mi per
            worker).
    """

    image: str | None = None
    namespace: str | None = None
    name: str | None = None
    secret: str | None = None
    replicas: int | None = None
    min_replicas: int = 2
    max_replicas: int = 10
    target_cpu: int = 70
    target_rps: float = 100.0
    cpu: str | None = None
    memory: str | None = None


@dataclass(frozen=True)
class Plan:
    """Every value the manifests need, checked: the options completed from the spec."""

    name: str
    namespace: str | None
    image: str
    secret: str
    replicas: int
    min_replicas: int
    max_replicas: int
    target_cpu: int
    target_rps: float
    cpu: str
    memory: str
    port: int
    workers: int


def plan_for(spec: Spec, options: K8sOptions) -> Plan:
    """Complete ``options`` from the spec and check every value against Kubernetes' rules.

    Raises:
        SettingsError: one or more values are invalid; the message lists each with the fix.
    """
    problems: list[str] = []
    name = options.name if options.name is not None else spec.name.replace("_", "-")
    longest = len(name) + len(_LONGEST_SUFFIX)
    if not _DNS1035_LABEL.fullmatch(name) or longest > 63:
        source = "--name" if options.name is not None else f"the project name {spec.name!r}"
        problems.append(
            f"{source} gives the object name {name!r}, which Kubernetes refuses: it must start "
            "with a letter, hold only lowercase letters, digits and '-', end with a letter or "
            f"digit and leave room for {_LONGEST_SUFFIX!r} within 63 characters; "
            "pass --name NAME"
        )
    namespace = options.namespace
    if namespace is not None and not _matches(_DNS1123_LABEL, namespace, 63):
        problems.append(
            f"--namespace {namespace!r} is not a Kubernetes namespace name (lowercase letters, "
            "digits and '-', at most 63 characters)"
        )
    secret = options.secret if options.secret is not None else f"{name}-conveyor"
    if not _matches(_DNS1123_SUBDOMAIN, secret, 253):
        problems.append(
            f"--secret {secret!r} is not a Kubernetes Secret name (lowercase letters, digits, "
            "'-' and '.')"
        )
    image = options.image if options.image is not None else f"{name}:latest"
    if not image or image.startswith("-") or any(ch.isspace() for ch in image):
        problems.append(f"--image {image!r} is not an image reference (e.g. registry/app:1.0)")
    problems += _replica_problems(options)
    if not 1 <= options.target_cpu <= 100:
        problems.append(
            f"--target-cpu must be a percentage from 1 to 100, not {options.target_cpu}"
        )
    rps = options.target_rps
    if not (rps == 0 or (math.isfinite(rps) and rps >= 0.001)):
        problems.append(
            f"--target-rps must be 0 (no requests-per-second metric) or at least 0.001, not {rps:g}"
        )
    serve = spec.serve
    cpu = options.cpu if options.cpu is not None else str(serve.workers * serve.model_threads)
    if not _CPU.fullmatch(cpu) or _is_zero(cpu):
        problems.append(f"--cpu {cpu!r} is not a CPU quantity above 0 (e.g. 2, 1.5 or 500m)")
    memory = options.memory if options.memory is not None else f"{512 * (serve.workers + 1)}Mi"
    if not _MEMORY.fullmatch(memory) or _is_zero(memory):
        problems.append(
            f"--memory {memory!r} is not a memory quantity above 0 (e.g. 1Gi, 1536Mi or 2G)"
        )
    if problems:
        raise SettingsError("; ".join(problems))
    return Plan(
        name=name,
        namespace=namespace,
        image=image,
        secret=secret,
        replicas=options.replicas if options.replicas is not None else options.min_replicas,
        min_replicas=options.min_replicas,
        max_replicas=options.max_replicas,
        target_cpu=options.target_cpu,
        target_rps=options.target_rps,
        cpu=cpu,
        memory=memory,
        port=serve.port,
        workers=serve.workers,
    )


def _replica_problems(options: K8sOptions) -> list[str]:
    low, high = options.min_replicas, options.max_replicas
    if low < 1:
        return [f"--min-replicas must be at least 1, not {low}"]
    if high < low:
        return [f"--max-replicas ({high}) must be at least --min-replicas ({low})"]
    replicas = options.replicas
    if replicas is not None and not low <= replicas <= high:
        return [
            f"--replicas ({replicas}) must lie between --min-replicas ({low}) and "
            f"--max-replicas ({high}), or the autoscaler changes it at once"
        ]
    return []


def _matches(pattern: re.Pattern[str], value: str, longest: int) -> bool:
    return len(value) <= longest and pattern.fullmatch(value) is not None


def _is_zero(quantity: str) -> bool:
    digits = re.match(r"[\d.]+", quantity)
    return digits is not None and float(digits.group(0)) == 0
