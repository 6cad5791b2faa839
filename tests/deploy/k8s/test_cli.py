"""`conveyor k8s render` end to end: the command, kubectl's own check, and import cost."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from conveyor.cli import app
from conveyor.cli._console import console, err_console

Invoke = Callable[..., Result]

RENDERED = {
    "Dockerfile",
    "Dockerfile.dockerignore",
    "spec-configmap.yaml",
    "server-deployment.yaml",
    "server-service.yaml",
    "server-hpa.yaml",
    "server-pdb.yaml",
    "controller-deployment.yaml",
}


@pytest.fixture
def invoke(project: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.chdir(project.parent)
    monkeypatch.delenv("CONVEYOR_DEBUG", raising=False)
    for each in (console, err_console):
        monkeypatch.setattr(each, "width", 200)

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, ["-p", project.name, *args], catch_exceptions=False)

    return run


def test_render_writes_every_file_and_says_what_to_do_next(invoke: Invoke, project: Path) -> None:
    options = "--image registry.example.com/fraud:3 -n ml --min-replicas 3 --max-replicas 6"
    options += " --target-cpu 55 --target-rps 40 --cpu 2 --memory 3Gi --secret fraud-urls"
    result = invoke("k8s", "render", *options.split())
    assert result.exit_code == 0, result.output
    out = project / "k8s"
    assert {path.name for path in out.iterdir()} == RENDERED
    for name in RENDERED:
        assert name in result.stdout
    assert result.stdout.count("created") == len(RENDERED)
    assert "docker build -f fraud/k8s/Dockerfile -t registry.example.com/fraud:3 fraud" in (
        result.stdout
    )
    assert "kubectl create secret generic fraud-urls -n ml" in result.stdout
    assert "--from-literal=CONVEYOR_DB_URL=" in result.stdout
    secret = result.stdout[result.stdout.index("2. kubectl") : result.stdout.index("(optional")]
    lines = secret.strip().splitlines()
    assert len(lines) == 5  # the command, the three required URLs, the spec's ${PG_URL}
    assert all(line.endswith("' \\") for line in lines[1:-1])  # one backslash: shell-ready
    assert lines[0].endswith("-n ml \\") and lines[-1].endswith("--from-literal=PG_URL='VALUE'")
    assert "kubectl apply -f fraud/k8s/" in result.stdout

    hpa = yaml.safe_load((out / "server-hpa.yaml").read_text())
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 6)
    assert hpa["metadata"]["namespace"] == "ml"
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 55
    assert hpa["spec"]["metrics"][1]["pods"]["target"]["averageValue"] == "40"
    server = yaml.safe_load((out / "server-deployment.yaml").read_text())
    container = server["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/fraud:3"
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "3Gi"}
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]} == {"fraud-urls"}

    again = invoke("k8s", "render", "--image", "registry.example.com/fraud:3", "-n", "ml")
    assert again.exit_code == 0, again.output
    assert "updated" in again.stdout and "unchanged" in again.stdout  # HPA etc. changed back


def test_out_option_and_hand_edit_refusal(invoke: Invoke, project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "deploy" / "fraud"
    assert invoke("k8s", "render", "--out", str(elsewhere)).exit_code == 0
    assert {path.name for path in elsewhere.iterdir()} == RENDERED
    assert not (project / "k8s").exists()
    service = elsewhere / "server-service.yaml"
    service.write_text(service.read_text().replace("ClusterIP", "NodePort"))

    refused = invoke("k8s", "render", "--out", str(elsewhere))
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: ")
    assert str(service) in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.output
    assert "NodePort" in service.read_text()

    forced = invoke("k8s", "render", "--out", str(elsewhere), "--force")
    assert forced.exit_code == 0, forced.output
    assert "ClusterIP" in service.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-replicas", "4", "--max-replicas", "2"], "--max-replicas (2) must be at least"),
        (["--target-cpu", "0"], "--target-cpu must be a percentage"),
        (["--memory", "lots"], "--memory 'lots' is not a memory quantity"),
        (["--namespace", "Prod"], "--namespace 'Prod' is not a Kubernetes namespace"),
    ],
)
def test_bad_input_is_one_clear_line(
    invoke: Invoke, project: Path, args: list[str], message: str
) -> None:
    result = invoke("k8s", "render", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert not (project / "k8s").exists()


def test_warnings_go_to_stderr(invoke: Invoke, project: Path) -> None:
    spec = project / "conveyor.yaml"
    spec.write_text(spec.read_text().replace("port: 9000", "port: 443"), encoding="utf-8")
    result = invoke("k8s", "render")
    assert result.exit_code == 0, result.output
    assert "warning: serve.port 443 is below 1024" in result.stderr


def test_k8s_alone_shows_its_commands(invoke: Invoke) -> None:
    result = invoke("k8s")
    assert "render" in result.output and "Dockerfile" in result.output


def _cluster_reachable(kubectl: str) -> bool:
    try:
        probe = subprocess.run(
            [kubectl, "version", "--output=json", "--request-timeout=5s"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return "serverVersion" in json.loads(probe.stdout or "{}")
    except (subprocess.TimeoutExpired, json.JSONDecodeError):
        return False


@pytest.mark.integration
def test_kubectl_accepts_the_manifests(invoke: Invoke, project: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; install it to check the manifests with kubectl")
    if not _cluster_reachable(kubectl):
        pytest.skip(
            "kubectl cannot reach a cluster (even --dry-run=client needs one to resolve kinds); "
            "point KUBECONFIG at one (e.g. kind) to run this check"
        )
    assert invoke("k8s", "render", "--image", "registry.example.com/fraud:1").exit_code == 0
    checked = subprocess.run(
        [kubectl, "apply", "--dry-run=client", "-f", str(project / "k8s")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    for kind in ("configmap", "deployment", "service", "horizontalpodautoscaler"):
        assert kind in checked.stdout


def test_importing_the_renderer_loads_no_heavy_library() -> None:
    heavy = ["mlflow", "sklearn", "optuna", "torch", "onnxruntime", "lightgbm", "pandas"]
    heavy += ["numpy", "scipy", "duckdb", "pyarrow", "pandera", "httpx", "sqlalchemy"]
    probe = (
        "import sys, conveyor.deploy.k8s, conveyor.cli.k8s;"
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:]))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *heavy], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
