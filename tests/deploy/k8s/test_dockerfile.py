"""The Dockerfile and its ignore file: what goes into the image, and how it starts."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conveyor import __version__

Render = Callable[..., Any]


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    pairs = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            pairs.append((word, rest))
    return pairs


def test_image_installs_conveyor_without_torch_and_runs_the_server(render: Render) -> None:
    text = render().texts["Dockerfile"]
    steps = _instructions(text)
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = [args for word, args in steps if word == "RUN"]
    install = shlex.split(runs[0])
    assert install[:2] == ["pip", "install"]
    package = install[2]
    assert package.startswith("conveyor-ml[") and package.endswith(f"]=={__version__}")
    extras = set(package[len("conveyor-ml[") : package.index("]")].split(","))
    assert extras == {"postgres", "redis", "s3"}  # the drivers for shared backends
    assert "torch" not in " ".join(runs)
    assert ("COPY", ". /app") in steps  # steps.py and the rest of the project
    assert ("WORKDIR", "/app") in steps
    assert ("EXPOSE", "9000") in steps
    assert ("ENTRYPOINT", '["conveyor", "--project", "/app"]') in steps
    cmd = next(args for word, args in steps if word == "CMD")
    assert cmd == '["serve", "--host", "0.0.0.0", "--port", "9000", "--workers", "3"]'
    users = [args for word, args in steps if word == "USER"]
    assert users == ["10001:10001"]
    assert [word for word, _ in steps].index("USER") > [word for word, _ in steps].index("COPY")
    assert "useradd --uid 10001" in text
    assert "chown 10001:10001 /app/.conveyor" in text  # the only writable project folder
    assert "COPY requirements.txt" not in text and "pip install /app" not in text


def test_project_requirements_and_packages_are_installed(render: Render, project: Path) -> None:
    (project / "requirements.txt").write_text("polars==1.0\n", encoding="utf-8")
    (project / "pyproject.toml").write_text("[project]\nname = 'fraud'\n", encoding="utf-8")
    steps = _instructions(render().texts["Dockerfile"])
    words = [f"{word} {args}" for word, args in steps]
    assert words.index("COPY requirements.txt /tmp/requirements.txt") < words.index(
        "RUN pip install -r /tmp/requirements.txt"
    )
    # Dependencies first (cached layers), the project's code last.
    assert words.index("RUN pip install -r /tmp/requirements.txt") < words.index("COPY . /app")
    assert words.index("COPY . /app") < words.index("RUN pip install /app")


def test_ignore_file_keeps_state_secrets_and_the_output_folder_out(render: Render) -> None:
    out = render()
    ignored = [
        line
        for line in out.texts["Dockerfile.dockerignore"].splitlines()
        if line and not line.startswith("#")
    ]
    for pattern in (".conveyor", ".env", ".git", ".venv", "**/__pycache__", "k8s"):
        assert pattern in ignored
    assert "steps.py" not in ignored and "conveyor.yaml" not in ignored
    assert "docker build -f k8s/Dockerfile -t fraud-model:latest ." in out.texts["Dockerfile"]


def test_output_folder_outside_the_project_is_not_ignored_by_path(
    render: Render, project: Path, tmp_path: Path
) -> None:
    from conveyor.deploy.k8s import K8sOptions, render_manifests
    from conveyor.spec import load_spec

    elsewhere = tmp_path / "manifests"
    rendering = render_manifests(
        load_spec(project), project, K8sOptions(image="x/y:1"), out_dir=elsewhere
    )
    texts = {file.name: file.text for file in rendering.files}
    assert f"docker build -f {elsewhere.resolve()}/Dockerfile -t x/y:1 ." in texts["Dockerfile"]
    assert str(elsewhere) not in texts["Dockerfile.dockerignore"]
