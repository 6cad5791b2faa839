"""The rendered manifests, parsed back: what a cluster would run, field by field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import conveyor.serving.app as serving_app
from conveyor.serving._metrics import ServerMetrics
from conveyor.serving._server import ServerConfig
from conveyor.serving.app._health import routes

Render = Callable[..., Any]

SPEC_TEXT_KEY = "conveyor.yaml"
URLS = {
    "CONVEYOR_DB_URL",
    "CONVEYOR_ARTIFACTS_URL",
    "CONVEYOR_MLFLOW_TRACKING_URI",
    "CONVEYOR_REDIS_URL",
}


def _comments(text: str) -> str:
    """The file's comment lines (the header), joined into one line of prose."""
    lines = [line[1:].strip() for line in text.splitlines() if line.startswith("#")]
    return " ".join(line for line in lines if line)


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return cast(dict[str, Any], containers[0])


def test_one_object_per_file_with_names_from_the_project(render: Render) -> None:
    out = render(namespace="ml")
    found = {(obj["kind"], obj["metadata"]["name"]) for obj in out.objects.values()}
    assert found == {
        ("ConfigMap", "fraud-model-spec"),  # '_' is not allowed in Kubernetes names
        ("Deployment", "fraud-model-server"),
        ("Service", "fraud-model-server"),
        ("HorizontalPodAutoscaler", "fraud-model-server"),
        ("PodDisruptionBudget", "fraud-model-server"),
        ("Deployment", "fraud-model-controller"),
    }
    assert {obj["metadata"]["namespace"] for obj in out.objects.values()} == {"ml"}
    assert all("namespace" not in obj["metadata"] for obj in render().objects.values())
    assert set(out.texts) == {*out.objects, "Dockerfile", "Dockerfile.dockerignore"}


def test_server_probes_the_servers_own_endpoints_on_its_port(render: Render) -> None:
    deployment = render().kind("Deployment", "server")
    container = _container(deployment)
    assert container["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert container["command"] == ["conveyor", "--project", "/app"]
    assert container["args"] == ["serve", "--host", "0.0.0.0", "--port", "9000", "--workers", "3"]
    probes = {
        kind: container[kind]["httpGet"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert {probe["port"] for probe in probes.values()} == {"http"}  # the named port above
    served = {route.path for route in routes(cast(Any, None))}
    assert {probe["path"] for probe in probes.values()} <= served
    # Model loading may take minutes: the startup probe must allow ServerConfig's ready wait.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9000"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert "/metrics" in served


def test_updates_and_drains_never_drop_requests(render: Render) -> None:
    out = render()
    deployment = out.kind("Deployment", "server")
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = deployment["spec"]["template"]["spec"]
    pre_stop = _container(deployment)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep" and int(pre_stop[1]) >= 5
    # After the preStop sleep, the server's workers drain for graceful_seconds and its
    # parent waits 15 s more: Kubernetes must not SIGKILL before that.
    drain = ServerConfig(model_uris=("m",), tracking_uri="t", cache_dir=Path()).graceful_seconds
    assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + drain + 15

    pdb = out.kind("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["maxUnavailable"] == 1
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert out.kind("Service")["spec"]["selector"] == selector
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert out.kind("Service")["spec"]["ports"] == [
        {"name": "http", "port": 9000, "targetPort": "http", "protocol": "TCP"}
    ]


def test_autoscaler_on_cpu_and_requests_per_second(render: Render) -> None:
    out = render(min_replicas=3, max_replicas=7, target_cpu=60, target_rps=250)
    hpa = out.kind("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": out.kind("Deployment", "server")["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 7)
    cpu, rps = hpa["spec"]["metrics"]
    assert cpu == {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
    }
    assert rps == {
        "type": "Pods",
        "pods": {
            "metric": {"name": "conveyor_requests_per_second"},
            "target": {"type": "AverageValue", "averageValue": "250"},
        },
    }
    assert out.kind("Deployment", "server")["spec"]["replicas"] == 3  # starts at the minimum
    fractional = render(target_rps=12.5).kind("HorizontalPodAutoscaler")
    assert fractional["spec"]["metrics"][1]["pods"]["target"]["averageValue"] == "12500m"
    cpu_only = render(target_rps=0).kind("HorizontalPodAutoscaler")
    assert [metric["type"] for metric in cpu_only["spec"]["metrics"]] == ["Resource"]


def test_the_rps_metric_is_derived_from_the_servers_real_counter(render: Render) -> None:
    metrics = ServerMetrics(multiprocess_dir=None)
    for endpoint in ("predict", "v2_infer", "invocations"):
        metrics.observe_request(endpoint=endpoint, model_version="1", status=200, seconds=0.01)
    exposed = metrics.render()[0].decode()
    header = _comments(render().texts["server-hpa.yaml"])
    assert "- seriesQuery: 'conveyor_requests_total{" in header
    assert "as: conveyor_requests_per_second" in header
    for endpoint in ("predict", "v2_infer", "invocations"):
        assert f'conveyor_requests_total{{code="200",endpoint="{endpoint}"' in exposed
    # The rule counts prediction endpoints only: each name must be a label the app sets.
    sources = "".join(
        path.read_text(encoding="utf-8")
        for path in Path(cast(str, serving_app.__file__)).parent.glob("*.py")
    )
    assert 'endpoint=~"predict|v2_infer|invocations"' in header
    for endpoint in ("predict", "v2_infer", "invocations"):
        assert f'["endpoint"] = "{endpoint}"' in sources


def test_configmap_holds_the_exact_spec_text_mounted_where_the_command_reads_it(
    render: Render, project: Path
) -> None:
    out = render()
    configmap = out.kind("ConfigMap")
    text = (project / "conveyor.yaml").read_text(encoding="utf-8")
    assert configmap["data"] == {SPEC_TEXT_KEY: text}
    assert "   \n" in text and "\t" in text and not text.endswith("\n")  # the hard cases
    for component in ("server", "controller"):
        deployment = out.kind("Deployment", component)
        pod = deployment["spec"]["template"]["spec"]
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        mounts = {mount["name"]: mount for mount in _container(deployment)["volumeMounts"]}
        assert volumes["spec"]["configMap"]["name"] == configmap["metadata"]["name"]
        assert mounts["spec"]["mountPath"] == "/app/conveyor.yaml"
        assert mounts["spec"]["subPath"] == SPEC_TEXT_KEY
        assert mounts["spec"]["readOnly"] is True
        assert volumes["state"] == {"name": "state", "emptyDir": {}}
        assert mounts["state"]["mountPath"] == "/app/.conveyor"  # writable model cache
        assert _container(deployment)["command"][1:] == ["--project", "/app"]


def test_a_changed_spec_rolls_the_pods(render: Render, project: Path) -> None:
    def spec_hashes() -> set[str]:
        out = render()
        return {
            out.kind("Deployment", c)["spec"]["template"]["metadata"]["annotations"][
                "conveyor/spec-sha256"
            ]
            for c in ("server", "controller")
        }

    before = spec_hashes()
    assert len(before) == 1
    spec = project / "conveyor.yaml"
    spec.write_text(spec.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    after = spec_hashes()
    assert len(after) == 1 and after != before


def test_every_url_comes_from_the_secret_never_inline(render: Render) -> None:
    for options, secret in (
        ({}, "fraud-model-conveyor"),
        ({"secret": "shared.urls"}, "shared.urls"),
    ):
        out = render(**options)
        for component in ("server", "controller"):
            env = _container(out.kind("Deployment", component))["env"]
            assert all(set(entry) == {"name", "valueFrom"} for entry in env)  # no "value"
            refs = {entry["name"]: entry["valueFrom"]["secretKeyRef"] for entry in env}
            assert {ref["name"] for ref in refs.values()} == {secret}
            assert all(ref["key"] == name for name, ref in refs.items())
            optional = {name for name, ref in refs.items() if ref["optional"]}
            # The spec's own ${PG_URL} is needed to load it; ${REDIS_URL:-...} has a default.
            assert set(refs) == URLS | {"PG_URL", "REDIS_URL"}
            assert optional == {"CONVEYOR_REDIS_URL", "REDIS_URL"}
    keys = {key.name: key.required for key in render().rendering.secret_keys}
    assert keys["PG_URL"] is True and keys["CONVEYOR_REDIS_URL"] is False
    for text in render().texts.values():
        assert "postgresql+psycopg://u@db" not in text  # the variable's value is never copied


def test_controller_is_one_replica_recreated_with_the_servers_image(render: Render) -> None:
    out = render(image="registry.example.com/fraud:1.2")
    controller = out.kind("Deployment", "controller")
    assert controller["spec"]["replicas"] == 1
    assert controller["spec"]["strategy"] == {"type": "Recreate"}
    container = _container(controller)
    assert container["command"] == ["conveyor", "--project", "/app"]
    assert container["args"] == ["controller"]
    assert "ports" not in container
    assert container["image"] == _container(out.kind("Deployment", "server"))["image"]
    assert container["image"] == "registry.example.com/fraud:1.2"
    header = _comments(out.texts["controller-deployment.yaml"])
    assert "holds the lease in the metadata database" in header
    assert "more replicas are safe, and only the lease holder acts" in header


def test_pods_run_as_the_images_non_root_user_without_api_access(render: Render) -> None:
    out = render()
    for component in ("server", "controller"):
        pod = out.kind("Deployment", component)["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert "USER 10001:10001" in out.texts["Dockerfile"]
        container = pod["containers"][0]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_resources_default_from_the_spec_and_can_be_set(render: Render) -> None:
    resources = _container(render().kind("Deployment", "server"))["resources"]
    # 3 workers x 2 model threads; memory 512Mi + 512Mi per worker, limited to the request.
    assert resources == {
        "requests": {"cpu": "6", "memory": "2048Mi"},
        "limits": {"memory": "2048Mi"},
    }
    chosen = render(cpu="1500m", memory="3Gi").kind("Deployment", "server")
    assert _container(chosen)["resources"]["requests"] == {"cpu": "1500m", "memory": "3Gi"}


def test_output_is_byte_for_byte_stable(render: Render) -> None:
    first, second = render(), render()
    assert first.texts == second.texts
    assert list(first.texts) == list(second.texts)
    lines = first.texts["server-deployment.yaml"].splitlines()
    assert lines[0].startswith("# Generated by `conveyor k8s render` (sha256 ")
    assert next(line for line in lines if not line.startswith("#")) == "apiVersion: apps/v1"
