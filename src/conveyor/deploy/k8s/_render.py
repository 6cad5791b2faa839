"""Render every file for a project: the manifests of both tiers and the image's Dockerfile."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from conveyor import __version__
from conveyor.deploy.k8s._controller import LEADER_NOTE, controller_deployment
from conveyor.deploy.k8s._dockerfile import dockerfile, dockerignore
from conveyor.deploy.k8s._env import SecretKey, env_from_secret, secret_keys
from conveyor.deploy.k8s._files import RenderedFile, rendered, to_yaml
from conveyor.deploy.k8s._options import K8sOptions, Plan, plan_for
from conveyor.deploy.k8s._pod import SPEC_KEY, configmap_name, metadata
from conveyor.deploy.k8s._server import (
    RPS_RULE,
    server_deployment,
    server_hpa,
    server_pdb,
    server_service,
)
from conveyor.errors import SpecError

if TYPE_CHECKING:
    from conveyor.spec import LoadedSpec

__all__ = ["Rendering", "render_manifests", "secret_command"]

_CONFIGMAP_LIMIT: Final = 1024 * 1024  # what the API server accepts for a whole ConfigMap
_INLINE_PASSWORD: Final = re.compile(r"://[^/@\s:]+:[^/@\s]+@")


@dataclass(frozen=True)
class Rendering:
    """What :func:`render_manifests` produced, and what the cluster must provide.

    Attributes:
        files: The files, in the order to show them.
        plan: The options after completion from the spec.
        secret_keys: The keys the pods read from the Secret ``plan.secret``.
        warnings: Things that will likely fail in the cluster, with the fix.
    """

    files: tuple[RenderedFile, ...]
    plan: Plan
    secret_keys: tuple[SecretKey, ...]
    warnings: tuple[str, ...]


def render_manifests(
    loaded: LoadedSpec, project_root: Path, options: K8sOptions, *, out_dir: Path
) -> Rendering:
    """Render the manifests and the Dockerfile of the project at ``project_root``.

    Args:
        loaded: The project's spec; its text goes into the ConfigMap unchanged.
        project_root: The project folder: the image's build context.
        options: The user's choices.
        out_dir: Where the files will be written (named in the Dockerfile's build hint and
            kept out of the image).

    Raises:
        SettingsError: an option is invalid.
        SpecError: the spec is too large for a ConfigMap.
    """
    chosen = plan_for(loaded.spec, options)
    size = len(loaded.text.encode("utf-8"))
    if size > _CONFIGMAP_LIMIT - 4096:  # room for the ConfigMap's own fields
        raise SpecError(
            f"{loaded.path or 'the spec'} is {size:,} bytes, too large for a ConfigMap (1 MiB); "
            "move large values (e.g. SQL queries) into files of the project"
        )
    keys = secret_keys(loaded.raw)
    env = env_from_secret(chosen.secret, keys)
    spec_sha256 = hashlib.sha256(loaded.text.encode("utf-8")).hexdigest()
    project_root = project_root.resolve()
    out_dir = out_dir.resolve()
    inside = out_dir.is_relative_to(project_root) and out_dir != project_root
    shown_out = out_dir.relative_to(project_root).as_posix() if inside else str(out_dir)
    build = f"docker build -f {shown_out}/Dockerfile -t {chosen.image} ."
    needs = f"It reads the Secret {chosen.secret}; create it with:\n{secret_command(chosen, keys)}"
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(chosen, configmap_name(chosen), None),
        "data": {SPEC_KEY: loaded.text},
    }
    files = (
        rendered(
            "Dockerfile",
            dockerfile(
                chosen,
                version=__version__,
                requirements=(project_root / "requirements.txt").is_file(),
                pyproject=(project_root / "pyproject.toml").is_file(),
                build_hint=build,
            ),
        ),
        rendered("Dockerfile.dockerignore", dockerignore([shown_out] if inside else [])),
        rendered(
            "spec-configmap.yaml",
            _yaml(configmap),
            ["The spec, as written: the pods expand its ${VARIABLES} from the Secret."],
        ),
        rendered(
            "server-deployment.yaml",
            _yaml(server_deployment(chosen, env, spec_sha256)),
            [f"The prediction server (`conveyor serve`). {needs}"],
        ),
        rendered("server-service.yaml", _yaml(server_service(chosen))),
        rendered("server-hpa.yaml", _yaml(server_hpa(chosen)), [RPS_RULE]),
        rendered("server-pdb.yaml", _yaml(server_pdb(chosen))),
        rendered(
            "controller-deployment.yaml",
            _yaml(controller_deployment(chosen, env, spec_sha256)),
            [f"The rollout controller (`conveyor controller`). {needs}", LEADER_NOTE],
        ),
    )
    return Rendering(files, chosen, tuple(keys), tuple(_warnings(loaded, chosen)))


def secret_command(plan: Plan, keys: list[SecretKey] | tuple[SecretKey, ...]) -> str:
    """A ``kubectl create secret`` command line with a placeholder for every key."""
    namespace = f" -n {plan.namespace}" if plan.namespace else ""
    words = [f"kubectl create secret generic {plan.secret}{namespace}"]
    words += [f"--from-literal={key.name}='{key.example}'" for key in keys if key.required]
    text = " \\\n    ".join(words)
    optional = [f"--from-literal={key.name}='{key.example}'" for key in keys if not key.required]
    if optional:
        text += "\n(optional: " + " ".join(optional) + ")"
    return text


def _yaml(document: dict[str, Any]) -> str:
    return to_yaml([document])


def _warnings(loaded: LoadedSpec, chosen: Plan) -> list[str]:
    found = []
    settings = loaded.raw.get("settings")
    if isinstance(settings, dict):
        for key, value in settings.items():
            if isinstance(value, str) and _INLINE_PASSWORD.search(value) and "${" not in value:
                found.append(
                    f"settings.{key} in the spec holds a password, which the ConfigMap exposes; "
                    f"write it as ${{VARIABLE}} and put the value in the Secret {chosen.secret}"
                )
    if chosen.port < 1024:
        found.append(
            f"serve.port {chosen.port} is below 1024, which the image's non-root user may not "
            "be allowed to listen on; use a port such as 8000"
        )
    return found
