"""Options and names are checked against Kubernetes' rules before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conveyor.errors import SettingsError

Render = Callable[..., Any]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_replicas": 0}, "--min-replicas must be at least 1, not 0"),
        ({"min_replicas": 5, "max_replicas": 3}, "--max-replicas (3) must be at least"),
        ({"replicas": 20}, "--replicas (20) must lie between --min-replicas (2)"),
        ({"target_cpu": 0}, "--target-cpu must be a percentage from 1 to 100, not 0"),
        ({"target_rps": -1.0}, "--target-rps must be 0"),
        ({"target_rps": float("nan")}, "--target-rps must be 0"),
        ({"target_rps": float("inf")}, "--target-rps must be 0"),
        ({"cpu": "two"}, "--cpu 'two' is not a CPU quantity"),
        ({"cpu": "0"}, "--cpu '0' is not a CPU quantity above 0"),
        ({"memory": "1GB"}, "--memory '1GB' is not a memory quantity"),
        ({"namespace": "ML_team"}, "--namespace 'ML_team' is not a Kubernetes namespace"),
        ({"secret": "My Secret"}, "--secret 'My Secret' is not a Kubernetes Secret name"),
        ({"image": "my image"}, "--image 'my image' is not an image reference"),
        ({"name": "Fraud"}, "--name gives the object name 'Fraud', which Kubernetes refuses"),
    ],
)
def test_invalid_options_are_refused_with_the_fix(
    render: Render, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError) as err:
        render(**options)
    assert message in str(err.value)
    assert "\n" not in str(err.value)  # one line for the CLI


def test_every_problem_is_reported_at_once(render: Render) -> None:
    with pytest.raises(SettingsError) as err:
        render(target_cpu=500, memory="lots")
    assert "--target-cpu" in str(err.value) and "--memory 'lots'" in str(err.value)


def test_project_names_kubernetes_refuses_need_name(render: Render, project: Path) -> None:
    spec = project / "conveyor.yaml"
    spec.write_text(spec.read_text().replace("fraud_model", "9lives"), encoding="utf-8")
    with pytest.raises(SettingsError, match=r"the project name '9lives' .* pass --name NAME"):
        render()
    out = render(name="nine-lives")
    assert out.kind("Service")["metadata"]["name"] == "nine-lives-server"
    assert out.rendering.plan.secret == "nine-lives-conveyor"
    assert out.rendering.plan.image == "nine-lives:latest"


def test_names_must_leave_room_for_the_suffixes(render: Render) -> None:
    longest = "a" * (63 - len("-controller"))
    assert render(name=longest).kind("Deployment", "controller")["metadata"]["name"] == (
        f"{longest}-controller"
    )
    with pytest.raises(SettingsError, match="within 63 characters"):
        render(name=longest + "a")


def test_warnings_for_what_will_fail_in_the_cluster(render: Render, project: Path) -> None:
    assert render().rendering.warnings == ()
    spec = project / "conveyor.yaml"
    text = spec.read_text().replace("${PG_URL}", "postgresql://app:hunter2@db/conveyor")
    spec.write_text(text.replace("port: 9000", "port: 80"), encoding="utf-8")
    warnings = render().rendering.warnings
    assert len(warnings) == 2
    assert "settings.db_url in the spec holds a password" in warnings[0]
    assert "serve.port 80 is below 1024" in warnings[1]
