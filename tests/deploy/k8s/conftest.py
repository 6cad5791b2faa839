"""A project folder to render, and its rendered files parsed back into Kubernetes objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.deploy.k8s import K8sOptions, Rendering, render_manifests
from conveyor.spec import load_spec

# Trailing spaces, a tab, non-ASCII text and variables: the ConfigMap must keep them all.
SPEC = (
    "name: fraud_model   \n"
    'description: "Scores card payments — fast"\n'
    "settings:\n"
    "  db_url: ${PG_URL}\n"
    "  redis_url: ${REDIS_URL:-redis://localhost:6379/0}\n"
    "serve:\n"
    "  port: 9000\n"
    "  workers: 3\n"
    "  model_threads: 2\n"
    "# a comment with a\ttab, and no final newline"
)
ENVIRON = {"PG_URL": "postgresql+psycopg://u@db/conveyor"}


@dataclass(frozen=True)
class Rendered:
    """One rendering: the library's result, and every YAML file parsed."""

    rendering: Rendering
    texts: dict[str, str]
    objects: dict[str, dict[str, Any]]  # file name -> its (single) object

    def kind(self, kind: str, component: str | None = None) -> dict[str, Any]:
        """The one object of that kind (and component label)."""
        found = [
            obj
            for obj in self.objects.values()
            if obj["kind"] == kind
            and (
                component is None
                or obj["metadata"]["labels"].get("app.kubernetes.io/component") == component
            )
        ]
        assert len(found) == 1, [o["metadata"]["name"] for o in found]
        return found[0]


RenderProject = Callable[..., Rendered]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "fraud"
    root.mkdir()
    (root / "conveyor.yaml").write_text(SPEC, encoding="utf-8")
    (root / "steps.py").write_text("def load(ctx):\n    pass\n", encoding="utf-8")
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    return root


@pytest.fixture
def render(project: Path) -> RenderProject:
    def run(root: Path = project, **options: Any) -> Rendered:
        loaded = load_spec(root / "conveyor.yaml")
        rendering = render_manifests(loaded, root, K8sOptions(**options), out_dir=root / "k8s")
        texts = {file.name: file.text for file in rendering.files}
        objects: dict[str, dict[str, Any]] = {}
        for name, text in texts.items():
            if name.endswith(".yaml"):
                documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
                assert len(documents) == 1, name
                objects[name] = documents[0]
        return Rendered(rendering, texts, objects)

    return run
